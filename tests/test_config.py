"""config.toml: the shipped file loads, and every mistake is a ConfigError naming its key path."""
from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from engine.config import DEFAULT_ROLES, load_config
from engine.defaults import product
from engine.errors import ConfigError

from helpers import ROOT

SHIPPED = (ROOT / "config.toml").read_text(encoding="utf-8")


def write_config(directory: Path, text: str) -> Path:
    """config.toml in ``directory``, beside the product's workflows (they declare the policy
    keys config.toml may set)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "workflows").exists():
        shutil.copytree(ROOT / "workflows", directory / "workflows")
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edited(old: str, new: str) -> str:
    """The shipped config with exactly one occurrence of ``old`` replaced."""
    assert SHIPPED.count(old) == 1, f"{old!r} must occur once in config.toml"
    return SHIPPED.replace(old, new)


QUOTE_SERIES = '[series.quote]\nprefix = "BJ"\nwidth = 6\nreset = "yearly"'
assert SHIPPED.count(QUOTE_SERIES) == 1


def in_quote_series(old: str, new: str) -> tuple[str, str]:
    """(old, new) for ``edited`` that change ``old`` inside the ``[series.quote]`` block only
    (``width = 6`` etc. occur in every series)."""
    assert QUOTE_SERIES.count(old) == 1
    return QUOTE_SERIES, QUOTE_SERIES.replace(old, new)


def test_shipped_config_loads():
    config = load_config(ROOT / "config.toml")

    assert config.dealer.name == "北京星辰汽车销售服务有限公司"
    assert config.roles == DEFAULT_ROLES and len(config.roles) == 9
    assert config.dealer.legal_representative == "林国栋"
    assert {login: u.login for login, u in config.users.items()} == {
        login: login for login in ("xu", "zhang", "li", "wang", "qian", "gao", "zhao", "chen",
                                   "sun", "zhou")}
    assert config.users["wang"].roles == ["sales_manager"]
    assert config.users["qian"].roles == ["sales_manager"]  # a second manager: four eyes
    assert config.series["quote"].prefix == "BJ" and config.series["quote"].width == 6
    prefixes = {k: s.prefix for k, s in config.series.items()}
    assert {k: prefixes.get(k) for k in ("quote", "contract", "delivery_booking", "delivery")} == {
        "quote": "BJ", "contract": "HT", "delivery_booking": "JY", "delivery": "JC"}
    assert len(set(prefixes.values())) == len(prefixes)  # no two series share a prefix
    assert config.policy["contract_approval_discount_share"] == Decimal("0.05")
    assert config.policy["delivery_followup_days"] == 7
    assert config.policy["deposit_cap"] == Decimal("0.20")  # a workflow's default
    assert config.libreoffice.timeout == 120.0 and isinstance(config.libreoffice.timeout, float)
    assert config.lock_timeout == 120.0
    assert config.tz.key == "Asia/Shanghai"


def test_relative_paths_resolve_from_the_config_folder(tmp_path, monkeypatch):
    shop = tmp_path / "shop"
    path = write_config(shop, SHIPPED)
    monkeypatch.chdir(tmp_path)  # the working directory must not matter

    config = load_config(path)

    assert config.base_dir == shop
    assert config.store_dir == shop / "store"
    assert config.outbox_dir == shop / "outbox"
    # a folder that is not the product's defaults is the store's own layer, taken first
    assert config.template_layers.own == shop / "templates" / "docx"
    assert config.template_layers.default == product().templates.resolve()
    assert config.workflows_dir == shop / "workflows"


def test_templates_come_in_two_layers_and_empty_paths_mean_the_products(tmp_path):
    path = write_config(tmp_path / "shop", edited('templates = "templates/docx"',
                                                  'templates = "templates"\n# x')
                        .replace('default_templates = ""', 'default_templates = "../group"')
                        .replace('workflows = "workflows"', 'workflows = ""'))
    config = load_config(path)
    assert config.template_layers.own == tmp_path / "shop" / "templates"
    assert config.template_layers.default == tmp_path / "group"
    assert config.workflows_dir == product().workflows.resolve() == ROOT / "workflows"
    unset = load_config(write_config(tmp_path / "plain", edited('default_templates = ""\n', "")))
    assert unset.template_layers.default == ROOT / "templates" / "docx"
    none = load_config(write_config(tmp_path / "none", edited('templates = "templates/docx"',
                                                              'templates = ""')))
    assert none.template_layers.own is None
    # a config written by an old `init`: both folders named by their absolute path
    old = load_config(write_config(tmp_path / "old", edited(
        'templates = "templates/docx"', f'templates = "{ROOT / "templates" / "docx"}"')))
    assert old.template_layers.own is None
    assert old.template_path("quote.docx") == ROOT / "templates" / "docx" / "quote.docx"


def test_absolute_paths_are_kept(tmp_path):
    elsewhere = tmp_path / "archive" / "outbox"
    path = write_config(tmp_path / "shop", edited('outbox = "outbox"', f'outbox = "{elsewhere}"'))

    assert load_config(path).outbox_dir == elsewhere


def test_config_found_relative_to_working_directory(tmp_path, monkeypatch):
    write_config(tmp_path / "shop", SHIPPED)
    monkeypatch.chdir(tmp_path)

    config = load_config("shop/config.toml")

    assert config.store_dir == tmp_path / "shop" / "store"


ROLES_LINE = 'name = "张伟"\nroles = ["sales"]'


def test_a_date_policy_is_a_toml_date_or_its_iso_text(tmp_path):
    """A ``type = "date"`` policy (the NEV purchase-tax relief periods) read from config.toml."""
    path = write_config(tmp_path, edited("delivery_followup_days = 7",
                                         "delivery_followup_days = 7\nnev_halved_until = 2028-06-30"
                                         '\nnev_exempt_until = "2025-12-30"'))
    policy = load_config(path).policy
    assert policy["nev_halved_until"] == date(2028, 6, 30)
    assert policy["nev_exempt_until"] == date(2025, 12, 30)
    assert policy["nev_halved_from"] == date(2026, 1, 1)   # the workflow's default


@pytest.mark.parametrize("old, new, key, words", [
    ("lock_timeout = 120", "lock_timeout = 120\nlock_timout = 5", "lock_timout",
     ["未知的配置项 lock_timout", "lock_timeout"]),
    ('code = "BJ1023"', 'code = "BJ1023"\nfax = "010-1"', "dealer.fax",
     ["未知的配置项 dealer.fax", "name, code, uscc"]),
    (ROLES_LINE, 'name = "张伟"\nrole = ["sales"]', "users.zhang.role",
     ["未知的配置项 users.zhang.role"]),
    (*in_quote_series("width = 6", "width = 6\nstart = 1"), "series.quote.start",
     ["未知的配置项 series.quote.start"]),
    (ROLES_LINE, 'name = "张伟"\nroles = "sales"', "users.zhang.roles",
     ["users.zhang.roles 应为列表", "'sales'"]),
    (ROLES_LINE, 'name = "张伟"\nroles = ["sales", 3]', "users.zhang.roles[1]",
     ["users.zhang.roles[1] 应为字符串", "3"]),
    ("\ntimeout = 120", '\ntimeout = "x"', "libreoffice.timeout",
     ["libreoffice.timeout 应为数字", "'x'"]),
    (*in_quote_series("width = 6", 'width = "6"'), "series.quote.width",
     ["series.quote.width 应为整数", "'6'"]),
    (*in_quote_series("width = 6", "width = 6.0"), "series.quote.width",
     ["series.quote.width 应为整数", "6.0"]),
    ("lock_timeout = 120", "lock_timeout = true", "lock_timeout", ["lock_timeout 应为数字", "True"]),
    ('[users.zhang]\nname = "张伟"', '[users.zhang]\nname = 7', "users.zhang.name",
     ["users.zhang.name 应为字符串"]),
    ('name = "北京星辰汽车销售服务有限公司"\n', "", "dealer.name", ["缺少配置项 dealer.name"]),
    ('prefix = "BJ"\n', "", "series.quote.prefix", ["缺少配置项 series.quote.prefix"]),
    ('[users.zhou]\nname = "周建国"\nroles = ["regional_manager"]',
     '[users.x]\nname = "某人"\nroles = ["boss"]', "users.x.roles[0]",
     ['users.x.roles[0] = "boss" 不是已定义的角色', "sales, sales_manager"]),
    ('name = "王强"\nroles = ["sales_manager"]', 'name = "王强"\nroles = ["sales", "sales_manger"]',
     "users.wang.roles[1]", ['users.wang.roles[1] = "sales_manger"']),
    (*in_quote_series('reset = "yearly"', 'reset = "monthly"'), "series.quote.reset",
     ['series.quote.reset 应为 "yearly" 或 "never"', '"monthly"']),
    (*in_quote_series("width = 6", "width = 0"), "series.quote.width",
     ["series.quote.width 应在 1–12 之间"]),
    (*in_quote_series("width = 6", "width = 13"), "series.quote.width",
     ["series.quote.width 应在 1–12 之间"]),
    ('prefix = "HT"\nwidth = 6', 'prefix = "HT"\nwidth = 13', "series.contract.width",
     ["series.contract.width 应在 1–12 之间"]),
    ('contract_approval_discount_share = "0.05"', 'contract_approval_discount_share = "5%"',
     "policy.contract_approval_discount_share", ["应为 0–1 之间的小数", '"5%"']),
    ('contract_approval_discount_share = "0.05"', 'contract_approval_discount_share = "1.5"',
     "policy.contract_approval_discount_share", ["应为 0–1 之间的小数"]),
    ('contract_approval_discount_share = "0.05"', "contract_approval_discount_share = 0.05",
     "policy.contract_approval_discount_share", ["应为字符串"]),
    ("delivery_followup_days = 7", "delivery_followup_days = 0", "policy.delivery_followup_days",
     ["policy.delivery_followup_days 应至少为 1"]),
    ("delivery_followup_days = 7", 'delivery_followup_days = 7\nnev_halved_until = "2027-02-30"',
     "policy.nev_halved_until", ["policy.nev_halved_until 应为日期（如 2026-01-01）", '"2027-02-30"']),
    ("delivery_followup_days = 7", "delivery_followup_days = 7\nnev_halved_until = 20271231",
     "policy.nev_halved_until", ["应为日期"]),
    ("delivery_followup_days = 7", "delivery_follow_up_days = 7", "policy.delivery_follow_up_days",
     ["未知的配置项 policy.delivery_follow_up_days"]),
    ('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"', "timezone",
     ['timezone = "Asia/Beijing" 不是有效的时区名']),
    ('timezone = "Asia/Shanghai"', "timezone = 8", "timezone", ["timezone 应为字符串"]),
    ("\ntimeout = 120", "\ntimeout = 0", "libreoffice.timeout", ["libreoffice.timeout 应为大于 0"]),
    ('\nkey = ""', '\nkey = ""\npath = "x"', "seal.path", ["未知的配置项 seal.path", "key"]),
    ('\nkey = ""', "\nkey = 1", "seal.key", ["seal.key 应为字符串"]),
    ('\nkey = ""', '\nkey = "store/seal.key"', "seal.key",
     ["seal.key", "在数据库目录", "之内", "否则能改写数据库的人也能伪造封存"]),
    ('\nkey = ""', '\nkey = "outbox/keys/seal.key"', "seal.key", ["在输出目录"]),
    ('\nkey = ""', '\nkey = "./store"', "seal.key", ["在数据库目录"]),
    ('base_url = "http://127.0.0.1:8000"', 'base_url = "127.0.0.1:8000"', "verification.base_url",
     ["verification.base_url", "http://"]),
    ('base_url = "http://127.0.0.1:8000"', 'base_url = "https://docs.example.com/"',
     "verification.base_url", ["末尾不带 /"]),
    ('password_env = "DEALERDOCS_CERT_PASSWORD"', 'password_env = "secret123!"',
     "signing.password_env", ["环境变量名", "不能写在配置文件中"]),
    ('[documents.contract]\npdf_a = true', '[documents.contract]\npdf_a = true\nsign = true',
     "documents.contract.sign", ["certificate 为空", "cert make-test"]),
    ('[documents.contract]\npdf_a = true', '[documents.contract]\npdf_a = "yes"',
     "documents.contract.pdf_a", ["true/false"]),
    ("\ntimeout = 120", '\ntimeout = 120\nunoserver = "/opt/venv-uno/bin/unoserver"',
     "libreoffice.unoserver", ["不再使用", "python3-uno", "请删去这一行"]),
    ('files = "outbox"', 'files = "db"', "files", ['files 应为 "outbox"', '收到 "db"']),
    ('files = "outbox"', 'files = "database"', "files",
     ['files = "database" 只能与 PostgreSQL 数据库一起使用', 'files = "outbox"']),
])
def test_mistakes_name_their_key(tmp_path, old, new, key, words):
    path = write_config(tmp_path, edited(old, new))

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    err = raised.value
    assert err.details["key"] == key
    assert err.message.startswith("config.toml: ")
    for word in words:
        assert word in err.message, err.message
    assert err.exit_code == 2


def test_the_seal_key_lives_outside_the_store_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write_config(tmp_path / "shop", SHIPPED))
    assert config.seal.key == ""
    assert config.seal_key_path == tmp_path / "home" / ".config" / "dealerdocs" / "BJ1023.seal.key"
    beside = load_config(write_config(tmp_path / "shop", edited('\nkey = ""', '\nkey = "seal.key"')))
    assert beside.seal_key_path == tmp_path / "shop" / "seal.key"   # relative: the config's folder
    assert not (tmp_path / "home").exists()                         # loading makes no key


def test_a_dealer_code_unfit_for_a_file_name_needs_an_explicit_key(tmp_path):
    config = load_config(write_config(tmp_path, edited('code = "BJ1023"', 'code = "京/1023"')))
    with pytest.raises(ConfigError) as raised:
        config.seal_key_path
    assert raised.value.details["key"] == "seal.key" and "京/1023" in raised.value.message


def test_no_home_folder_needs_an_explicit_key(tmp_path, monkeypatch):
    import pwd

    def unknown(uid):
        raise KeyError(uid)

    monkeypatch.delenv("HOME")
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    config = load_config(write_config(tmp_path, SHIPPED))   # loads: only `seal` needs the key
    with pytest.raises(ConfigError) as raised:
        config.seal_key_path
    assert "无法确定当前用户的主目录" in raised.value.message


def test_a_role_defined_in_roles_may_be_used(tmp_path):
    text = edited('regional_manager = "区域经理"', 'regional_manager = "区域经理"\nboss = "总经理"')
    text = text.replace('roles = ["regional_manager"]', 'roles = ["regional_manager", "boss"]')
    config = load_config(write_config(tmp_path, text))

    assert config.users["zhou"].roles == ["regional_manager", "boss"]
    assert config.role_label("boss") == "总经理"


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "config.toml"

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert raised.value.details["path"] == str(path)
    assert "找不到配置文件" in raised.value.message and str(path) in raised.value.message
    assert "dealerdocs init" in raised.value.message


def test_invalid_toml(tmp_path):
    path = write_config(tmp_path, SHIPPED + "\n[dealer\nname = 1\n")

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert "不是有效的 TOML" in raised.value.message and str(path) in raised.value.message
    assert "line " in raised.value.message  # tomllib's position is passed on
    assert raised.value.details["path"] == str(path)
    assert raised.value.__cause__ is not None


def test_not_utf8(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(SHIPPED.encode("gb18030"))

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert "无法读取配置文件" in raised.value.message and str(path) in raised.value.message


def test_a_folder_is_not_a_config(tmp_path):
    (tmp_path / "config.toml").mkdir()

    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "config.toml")

    assert "无法读取配置文件" in raised.value.message


def test_base_dir_cannot_be_set_from_the_file(tmp_path):
    path = write_config(tmp_path, 'base_dir = "/"\n' + SHIPPED)

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert raised.value.details["key"] == "base_dir"


def test_login_cannot_be_set_from_the_file(tmp_path):
    path = write_config(tmp_path, edited(ROLES_LINE, ROLES_LINE + '\nlogin = "boss"'))

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert raised.value.details["key"] == "users.zhang.login"


def test_negative_lock_timeout_is_refused(tmp_path):
    path = write_config(tmp_path, edited("lock_timeout = 120", "lock_timeout = -1"))

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert raised.value.details["key"] == "lock_timeout"


def test_unknown_user_lookup_lists_known_users():
    from engine.errors import PermissionDenied

    config = load_config(ROOT / "config.toml")

    with pytest.raises(PermissionDenied) as raised:
        config.user("zhangg")

    assert '未知用户 "zhangg"' in raised.value.message
    assert "zhang、zhao、zhou" in raised.value.message
    assert config.user("zhang").name == "张伟"


def test_a_document_kind_no_workflow_issues_is_named(tmp_path):
    from engine import Engine
    from helpers import make_dealer_dir

    path = make_dealer_dir(tmp_path / "d")
    path.write_text(path.read_text(encoding="utf-8") + "\n[documents.brochure]\npdf_a = true\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        Engine(load_config(path))
    assert "documents.brochure" in raised.value.message and "contract" in raised.value.message
