"""Validation rules that workflow definitions name (domain.md §5); each normalises or raises.

Every rule takes the raw string, normalises it (full-width → half-width, separators removed,
upper-case) and returns the stored form, or raises RuleViolation quoting what is wrong and right.
python-stdnum 2.2 is used only where it is right (domain.md §5.6):
- cn_id: `stdnum.cn.ric.calc_check_digit` (MOD 11-2, takes the full 18 chars) but not `validate`,
  which rejects real IDs whose county code is younger than the holder and accepts future births;
- uscc: `stdnum.cn.uscc.calc_check_digit` (MOD 31) but not `validate`, which demands 8 leading
  digits and so rejects letter registration authorities (Y…);
- vin, mobile, plate: stdnum has nothing, so these are our own code. The VIN check digit is
  always enforced here; a supervisor override for imported VINs belongs to the caller.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from stdnum.cn import ric, uscc as _uscc

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
NEV_LETTERS = "DF"  # GA 36-2018: D pure electric, F other new energy
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VIN_VALUES = dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ", [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9,
                                                  2, 3, 4, 5, 6, 7, 8, 9]))
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_L = "A-HJ-NP-Z"  # plate letters: no I, O
_PLATE_FORMS = (
    re.compile(rf"[{PROVINCES}][{_L}][{_L}0-9]{{5}}"),                  # ordinary, 7 chars
    re.compile(rf"[{PROVINCES}][{_L}][{NEV_LETTERS}][{_L}0-9][0-9]{{4}}"),  # small NEV
    re.compile(rf"[{PROVINCES}][{_L}][0-9]{{5}}[{NEV_LETTERS}]"),         # large NEV
)


class RuleViolation(ValueError):
    """A value breaks a validation rule; the message (Chinese) quotes the value and the rule."""

    def __init__(self, message: str, value: str | None = None) -> None:
        super().__init__(message)
        self.value = value


class RuleWarning(RuleViolation):
    """A doubtful value that an explicit override may accept; ``normalized`` is what is stored then."""

    def __init__(self, message: str, value: str | None, normalized: str) -> None:
        super().__init__(message, value)
        self.normalized = normalized


def _clean(value: str, drop: str = " ", upper: bool = True) -> str:
    """Full-width → half-width, drop separators and whitespace, upper-case; empty is a violation."""
    if not isinstance(value, str):
        raise RuleViolation(f"应为文本（收到 {type(value).__name__} {value!r}）")
    half = "".join(chr(ord(c) - 0xFEE0) if "！" <= c <= "～" else c for c in value)
    v = "".join(c for c in half if c not in drop and not c.isspace())
    if not v:
        raise RuleViolation("为空", value)
    return v.upper() if upper else v


def _got(raw: str, extra: str = "") -> str:
    return f"（收到 \"{raw.strip()}\"{'，' + extra if extra else ''}）"


def mobile(value: str) -> str:
    """Mainland mobile: strip +86/0086, spaces, hyphens; then ^1[3-9]\\d{9}$ (no segment list)."""
    v = _clean(value, " -", upper=False)
    v = re.sub(r"^(\+86|0086)", "", v)
    rule = "应为 11 位数字，以 1 开头，第二位 3–9"
    bad = "".join(dict.fromkeys(c for c in v if not "0" <= c <= "9"))
    if bad:
        raise RuleViolation(rule + _got(value, f'含非数字 "{bad}"'), value)
    if len(v) != 11:
        raise RuleViolation(f"{rule}{_got(value, f'{len(v)} 位')}", value)
    if v[0] != "1" or v[1] not in "3456789":
        raise RuleViolation(f"{rule}{_got(value, f'开头是 {v[:2]}')}", value)
    return v


def _birth_date(v: str) -> date:
    try:
        return date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError as err:
        raise RuleViolation(f"第 7–14 位出生日期 {v[6:14]} 不是有效日期{_got(v)}", v) from err


def cn_id(value: str, today: date | None = None) -> str:
    """GB 11643 18-char resident ID: MOD 11-2 check, real birth date in [1900-01-01, today]."""
    v = _clean(value, " -")
    if len(v) != 18:
        hint = "；15 位一代证已停用" if len(v) == 15 else ""
        raise RuleViolation(f"应为 18 位：17 位数字 + 校验位（数字或 X）{hint}"
                            f"{_got(value, f'{len(v)} 位')}", value)
    if not re.fullmatch(r"[0-9]{17}[0-9X]", v):
        raise RuleViolation(f"前 17 位应为数字，末位为数字或 X{_got(value)}", value)
    born = _birth_date(v)
    today = today or date.today()
    if not date(1900, 1, 1) <= born <= today:
        raise RuleViolation(f"出生日期 {born.isoformat()} 应在 1900-01-01 至今天之间{_got(value)}",
                            value)
    check = ric.calc_check_digit(v)
    if v[-1] != check:
        raise RuleViolation(f"校验位不符：按前 17 位应为 {check}，实际为 {v[-1]}，请逐位核对"
                            f"{_got(value)}", value)
    return v


def cn_id_birth_date(value: str, today: date | None = None) -> date:
    """Birth date of a resident ID (validated first), e.g. for age checks."""
    return _birth_date(cn_id(value, today))


def uscc(value: str) -> str:
    """GB 32100 unified social credit code: 31-symbol alphabet, digits in 3–8, MOD 31 check."""
    v = _clean(value, " -")
    if len(v) != 18:
        raise RuleViolation(f"应为 18 位{_got(value, f'{len(v)} 位')}", value)
    bad = "".join(dict.fromkeys(c for c in v if c not in _USCC_ALPHABET))
    if bad:
        raise RuleViolation(f'含不允许的字符 "{bad}"：只用数字和大写字母，不用 I、O、S、V、Z'
                            f"{_got(value)}", value)
    if not v[2:8].isdigit():
        raise RuleViolation(f"第 3–8 位应为行政区划代码（6 位数字）{_got(value)}", value)
    check = _uscc.calc_check_digit(v[:17])
    if v[-1] != check:
        raise RuleViolation(f"校验位不符：按前 17 位应为 {check}，实际为 {v[-1]}，请逐位核对"
                            f"{_got(value)}", value)
    return v


def _vin_check(v: str) -> str:
    total = sum((int(c) if c.isdigit() else _VIN_VALUES[c]) * w for c, w in zip(v, _VIN_WEIGHTS))
    return "X" if total % 11 == 10 else str(total % 11)


def vin(value: str) -> str:
    """ISO 3779 / GB 16735 VIN: 17 of [0-9A-Z] without I/O/Q; position-9 check digit mandatory."""
    v = _clean(value, " -*")
    if len(v) != 17:
        raise RuleViolation(f"应为 17 位{_got(value, f'{len(v)} 位')}", value)
    bad = "".join(dict.fromkeys(c for c in v if not re.fullmatch(r"[A-HJ-NPR-Z0-9]", c)))
    if bad:
        fixed = v.translate(str.maketrans("IOQ", "100"))
        hint = (f"；是否应为 \"{fixed}\"？" if re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", fixed)
                and _vin_check(fixed) == fixed[8] else "")
        raise RuleViolation(f'含不允许的字符 "{bad}"：只用数字和字母，不用 I、O、Q{hint}'
                            f"{_got(value)}", value)
    check = _vin_check(v)
    if v[8] != check:
        message = (f"第 9 位校验位不符：按其余各位应为 {check}，实际为 {v[8]}，请逐位核对"
                   f"{_got(value)}")
        if v[0] == "L":  # built in China: GB 16735 makes the check digit mandatory
            raise RuleViolation(message, value)
        # Imported / parallel-import VINs (ISO 3779 leaves the check digit optional, e.g. EU
        # makers): a warning that an explicit override accepts.
        raise RuleWarning(message + "；非国产车可勾选校验位例外后保存", value, v)
    return v


def engine_number(value: str) -> str:
    """Engine or drive-motor number as stamped: 5–20 letters, digits and hyphens, upper-cased."""
    v = _clean(value, " ")
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9-]{3,18}[A-Z0-9]", v):
        raise RuleViolation(f"应为 5–20 位字母、数字（可含连字符）{_got(value)}", value)
    return v


def plate(value: str) -> str:
    """GA 36-2018 plate: ordinary 7 chars; small NEV D/F in position 3; large NEV D/F at the end."""
    v = _clean(value, " -·・•")
    if v[0] not in PROVINCES:
        raise RuleViolation(f"首字应为省份简称（{PROVINCES}）{_got(value)}", value)
    if "I" in v or "O" in v:
        raise RuleViolation(f"号牌不用字母 I、O{_got(value)}", value)
    if len(v) not in (7, 8):
        raise RuleViolation(f"应为 7 位（普通）或 8 位（新能源）{_got(value, f'{len(v)} 位')}", value)
    if any(form.fullmatch(v) for form in _PLATE_FORMS):
        return v
    if len(v) == 7:
        raise RuleViolation(f"普通号牌应为 省份简称 + 发牌机关字母 + 5 位字母或数字{_got(value)}", value)
    raise RuleViolation(f"新能源号牌应为 省份简称 + 字母 + D/F + 字母或数字 + 4 位数字（小型），"
                        f"或 省份简称 + 字母 + 5 位数字 + D/F（大型）{_got(value)}", value)


RULES: dict[str, Callable[[str], str]] = {
    "mobile": mobile, "cn_id": cn_id, "uscc": uscc, "vin": vin, "plate": plate,
    "engine_number": engine_number,
}


def check(rule: str, value: str) -> str:
    """Apply the rule named `rule` (KeyError if unknown) and return the normalised value."""
    return RULES[rule](value)
