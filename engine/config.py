"""config.toml: the dealership's identity, users and roles, number series, paths, LibreOffice and
where the seal key lives.

Read with tomllib into frozen dataclasses. Parsing is strict: an unknown key or a value of the
wrong type is reported with its key path (``users.zhang.roles[1]``), so a typo in the config
fails at start-up instead of silently doing nothing.
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .defaults import product
from .errors import ConfigError
from .policy import declared_in as declared_policy, resolve as resolve_policy
from .templates import TemplateLayers
from .typedtoml import build

# where issued files are archived (the top-level ``files`` key)
FILES = ("outbox", "database")

DEFAULT_ROLES = {
    "reception": "前台",
    "sales": "销售顾问",
    "sales_manager": "销售经理",
    "doc_controller": "文控",
    "ops_manager": "运营经理",
    "oem_supervisor": "厂家督导",
    "regional_manager": "区域经理",
    "stock": "库管",
    "group_manager": "集团经理",
}

GROUP = "*"   # the view of every store of a group (``Config.for_store(GROUP)``): read-only


@dataclass(frozen=True)
class Dealer:
    name: str
    code: str
    uscc: str
    address: str
    phone: str
    bank: str
    account: str
    legal_representative: str = ""


@dataclass(frozen=True)
class Site:
    """One store of a dealer group (``[stores.<code>]``): its own company (name, USCC, bank:
    what its documents print), the prefix of its document numbers (``BJ01`` →
    ``BJ01-HT-2026-000001``) and its own ``[policy]`` overrides over the group's."""

    name: str
    uscc: str
    address: str
    phone: str
    bank: str
    account: str
    prefix: str
    legal_representative: str = ""
    policy: dict[str, Any] = field(default_factory=dict)
    code: str = ""  # the table's key

    def as_dealer(self) -> Dealer:
        return Dealer(name=self.name, code=self.code, uscc=self.uscc, address=self.address,
                      phone=self.phone, bank=self.bank, account=self.account,
                      legal_representative=self.legal_representative)


@dataclass(frozen=True)
class RoleAccess:
    """What a role sees besides the steps workflows give it (``[access.<role>]``).

    ``cases``: "own" = the cases its users opened or are the assignee of (the consultant), and
    the cases linked to those; "all" = every case of its workflows; "none" = no case at all.
    Its workflows are those whose steps the role takes, unless ``workflows`` names them.
    ``documents``: "cases" = the documents of the cases it sees; "all" = every issued
    document and its files (the document controller, who hands out the copies).
    """

    cases: str = "own"
    documents: str = "cases"
    workflows: list[str] | None = None
    reveal: bool = False      # may ask to see full ID and mobile numbers (audited each time)
    register: bool = False    # reads the 文件发放回收记录表
    dispatch: bool = False    # hands out copies
    recall: bool = False      # takes copies back
    reassign: bool = False    # gives a case (and its linked cases) to another consultant
    purge: bool = False       # erases a person's data (dealerdocs purge)
    # a dealer group's role (the group manager): with ``[stores]``, its users may also look at
    # every store at once (the group view, read-only); its workflows default to all of them
    group: bool = False


# The reach of the shipped roles; a config.toml written before [access] existed gets these.
DEFAULT_ACCESS = {
    # the front desk: the showroom register, not the customers' files
    "reception": RoleAccess(cases="all", workflows=["reception"]),
    # the stock keeper (库管): the cars, no customer's data
    "stock": RoleAccess(cases="all", workflows=["stock"]),
    "sales": RoleAccess(cases="own", reveal=True, dispatch=True),
    "sales_manager": RoleAccess(cases="all", reveal=True, register=True, dispatch=True,
                                recall=True, reassign=True, purge=True),
    "doc_controller": RoleAccess(cases="none", documents="all", register=True, dispatch=True,
                                 recall=True),
    "ops_manager": RoleAccess(cases="all", register=True),
    "oem_supervisor": RoleAccess(cases="all"),
    "regional_manager": RoleAccess(cases="all"),
    # head office: every store's cases, documents and registers, masked, read-only
    "group_manager": RoleAccess(cases="all", documents="all", register=True, group=True),
}


@dataclass(frozen=True)
class Privacy:
    """How long personal data is kept (``[privacy]``; 《个人信息保护法》 Art. 19 and 47).

    ``retention_days``: a workflow's finished cases lose their personal data this many days
    after their last change (``dealerdocs purge --expired``), and at once when the person asks
    (``purge --customer``). ``keep``: workflows whose cases a law requires the store to keep
    whole, with the reason (shown by purge and written into the audit trail). A workflow in
    neither is kept, with a reason saying so.
    """

    retention_days: dict[str, int] = field(default_factory=dict)
    keep: dict[str, str] = field(default_factory=dict)


DEFAULT_PRIVACY = Privacy(
    retention_days={"test_drive": 365, "quote": 365, "customer": 1095, "reception": 365},
    keep={"contract": "购车合同随收款与开票凭证归档（《会计档案管理办法》附表：会计凭证保管 30 年），"
                      "也是三包与质量争议的依据",
          "delivery": "交车确认单证明车辆及《汽车销售管理办法》第十六条所列随车文件已交付，随购车合同归档",
          "rectification": "整改记录不含客户个人信息，按厂家要求保存"})


@dataclass(frozen=True)
class User:
    name: str
    roles: list[str] = field(default_factory=list)   # with [stores]: in every store
    login: str = ""  # filled from the table key
    # argon2 hash for signing in to the web app (`dealerdocs user set-password LOGIN`);
    # None = this user cannot sign in to the web app
    password_hash: str | None = None
    # with [stores]: the roles this user has in each store ({"BJ01": ["sales"]}); ``roles``
    # are theirs in every store (a group manager's)
    stores: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Series:
    """A document number series: ``{prefix}-{year}-{seq:0{width}d}`` or, without yearly reset,
    ``{prefix}-{seq:0{width}d}``."""

    prefix: str
    width: int = 6
    reset: str = "yearly"  # "yearly" | "never"


@dataclass(frozen=True)
class Paths:
    """``[paths]``; relative paths are taken from the config's folder.

    Templates come in two layers: the store's own edited copies (``templates``, made with
    ``dealerdocs templates copy``) are looked up first, then the product's defaults
    (``default_templates``; empty = those installed with dealerdocs). A ``templates`` that is
    empty or names the defaults' own folder (configs written before the layers existed) means
    the store has no copies of its own; any other folder is the store's layer, whatever it
    already holds.
    """

    store: str = "store"
    outbox: str = "outbox"
    templates: str = "templates"
    default_templates: str = ""
    workflows: str = ""  # empty = the workflow definitions installed with dealerdocs


@dataclass(frozen=True)
class LibreOffice:
    binary: str = "soffice"
    timeout: float = 120.0
    # Warm instances (engine/office.py workers) started on demand and kept running; 0 = start
    # none (a pool started with `dealerdocs converter start` is still used).
    warm_instances: int = 0
    # The Python that runs a warm instance's worker (it needs LibreOffice's uno module);
    # empty = LibreOffice's own beside soffice, else /usr/bin/python3 (Debian's python3-uno).
    python: str = ""
    # A warm instance is restarted after converting this many documents for one command:
    # LibreOffice's memory grows with every document (0 = never).
    recycle_after: int = 100
    # The folder of the warm pool (its pool.json); empty = <store>/converter. Several stores
    # on one server may share one pool.
    pool: str = ""


@dataclass(frozen=True)
class Sealing:
    """``[seal]``: the HMAC key of ``dealerdocs seal`` lives outside the store, so whoever can
    rewrite the store cannot make a matching seal line."""

    # Path of the key file (made 0600 on the first `dealerdocs seal`); relative paths from the
    # config's folder; empty = ~/.config/dealerdocs/<dealer code>.seal.key.
    key: str = ""


@dataclass(frozen=True)
class Verification:
    """``[verification]``: where the QR code on every page of an issued PDF points. A reader
    of the paper opens ``{base_url}/v/<number>?h=…`` (``dealerdocs serve``'s public page) or
    runs ``dealerdocs check FILE.pdf``."""

    base_url: str = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Signing:
    """``[signing]``: the store's own certificate for signing what it issues (PAdES). The
    password of the PKCS#12 file comes from the environment variable ``password_env``, never
    from this file; an empty ``certificate`` = the store signs nothing."""

    certificate: str = ""
    password_env: str = "DEALERDOCS_CERT_PASSWORD"


@dataclass(frozen=True)
class DocumentKind:
    """``[documents.<kind>]``: how the PDFs of one document kind (``quote``, ``contract``…)
    are finished: signed by the store (``sign``, with ``[signing]``'s certificate) and made
    as PDF/A-2b for the archive (``pdf_a``)."""

    sign: bool = False
    pdf_a: bool = False


@dataclass(frozen=True)
class Config:
    dealer: Dealer
    users: dict[str, User]
    series: dict[str, Series]
    paths: Paths = field(default_factory=Paths)
    libreoffice: LibreOffice = field(default_factory=LibreOffice)
    roles: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    access: dict[str, RoleAccess] = field(default_factory=lambda: dict(DEFAULT_ACCESS))
    privacy: Privacy = field(default_factory=lambda: DEFAULT_PRIVACY)
    # the store's policy, every key the workflows declare ([policy.<key>] in workflows/*.toml)
    # with config.toml's [policy] overrides applied (engine/policy.py); not read as a table
    policy: dict[str, Any] = field(default_factory=dict)
    seal: Sealing = field(default_factory=Sealing)
    verification: Verification = field(default_factory=Verification)
    signing: Signing = field(default_factory=Signing)
    documents: dict[str, DocumentKind] = field(default_factory=dict)
    lock_timeout: float = 120.0
    timezone: str = "Asia/Shanghai"  # documents are dated in the store's local time
    # Where the cases live: empty = the embedded store in [paths] store; "postgresql://user@
    # host:port/db" = a PostgreSQL database (a dealer group's servers share it; the password
    # comes from PGPASSWORD or ~/.pgpass, never from this file). [paths] store still holds
    # the store's keys, attachments and caches (a folder all servers mount).
    store: str = ""
    # Where issued files (.docx, PDF, stamped PDFs) are archived: "outbox" = the [paths]
    # outbox folder (on several servers, a folder all of them mount); "database" = in the
    # PostgreSQL store itself, content-addressed by sha256, written in the transaction that
    # records the document (only with store = "postgresql://…"; engine/dbarchive.py).
    files: str = "outbox"
    # A dealer group's stores (``[stores.<code>]``), in the file's order; empty = one store,
    # the [dealer]. With stores, each case belongs to one of them: see :meth:`for_store`.
    stores: dict[str, Site] = field(default_factory=dict)
    # not read from the file: which store this config is the view of (:meth:`for_store`;
    # "" = a one-store config, GROUP = every store), and the config it was made from
    current_store: str = ""
    origin: "Config | None" = None
    base_dir: Path = Path(".")  # folder of config.toml; not read from the file

    # --- a dealer group's stores -------------------------------------------------------------

    @property
    def whole(self) -> "Config":
        """The config as read from the file (a store's view keeps it in ``origin``)."""
        return self.origin or self

    @property
    def default_store(self) -> str:
        """The store of records written before ``[stores]`` existed: the first one listed."""
        return next(iter(self.stores), "")

    @property
    def site_code(self) -> str:
        """The code of the whole installation (the group's [dealer], or the one store's):
        what the seal lines and their key are named by."""
        return self.whole.dealer.code

    def store_label(self, code: str) -> str:
        if code == GROUP:
            return f"全部门店（{self.whole.dealer.name}）"
        site = self.stores.get(code)
        return f"{site.name}（{code}）" if site else code

    def roles_in(self, login: str, code: str) -> list[str]:
        """``login``'s roles in store ``code`` (GROUP: their group roles only)."""
        user = self.whole.users.get(login)
        if user is None:
            return []
        if code == GROUP:
            return [r for r in user.roles if self.role_access(r).group]
        return list(dict.fromkeys([*user.roles, *user.stores.get(code, [])]))

    def stores_of(self, login: str) -> list[str]:
        """The stores ``login`` has a role in, in config order, then GROUP if they have a
        group role; empty for a one-store config."""
        if not self.stores:
            return []
        return [c for c in [*self.stores, GROUP] if self.roles_in(login, c)]

    def for_store(self, code: str) -> "Config":
        """The config as store ``code`` of the group sees it: its company as the [dealer],
        its policy, its number prefix on every series, each user with their roles there.
        GROUP: every store at once, each user with their group roles only (the store view
        refuses to write any case there). A one-store config is its own only store ("")."""
        whole = self.whole
        if not whole.stores:
            if code:
                raise ConfigError(f"config.toml 没有 [stores]，不能选择门店 \"{code}\"",
                                  key="stores")
            return whole
        if code == GROUP:
            dealer, policy, series = whole.dealer, whole.policy, whole.series
        elif code in whole.stores:
            site = whole.stores[code]
            dealer, policy = site.as_dealer(), site.policy
            series = {k: dataclasses.replace(s, prefix=f"{site.prefix}-{s.prefix}")
                      for k, s in whole.series.items()}
        else:
            known = "、".join(whole.store_label(c) for c in whole.stores)
            raise ConfigError(f"没有门店 \"{code}\"（config.toml 的 [stores] 有：{known}）",
                              key="stores")
        users = {login: dataclasses.replace(u, roles=whole.roles_in(login, code))
                 for login, u in whole.users.items()}
        return dataclasses.replace(whole, dealer=dealer, policy=policy, series=series,
                                   users=users, current_store=code, origin=whole)

    def path(self, name: str) -> Path:
        """An absolute path from ``[paths]``, relative paths taken from the config's folder."""
        p = Path(getattr(self.paths, name)).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def store_dir(self) -> Path:
        return self.path("store")

    @property
    def outbox_dir(self) -> Path:
        return self.path("outbox")

    @property
    def template_layers(self) -> TemplateLayers:
        """Where templates are found: the store's own copies first, then the defaults."""
        default = (self.path("default_templates") if self.paths.default_templates
                   else product().templates).resolve()
        own = self.path("templates").resolve() if self.paths.templates else None
        return TemplateLayers(own=None if own == default else own, default=default)

    def template_path(self, name: str) -> Path:
        """The file a template name (``quote.docx``) stands for: the store's copy if it has
        one, else the default; a TemplateError naming both folders when neither has it."""
        return self.template_layers.path(name)

    @property
    def workflows_dir(self) -> Path:
        return self.path("workflows") if self.paths.workflows else product().workflows.resolve()

    @property
    def pool_dir(self) -> Path:
        """Where the warm LibreOffice pool keeps its state (``[libreoffice] pool``)."""
        if not self.libreoffice.pool:
            return self.store_dir / "converter"
        p = Path(self.libreoffice.pool).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def seal_key_path(self) -> Path:
        """The seal key's file (absolute, symlinks resolved); never inside the store or outbox
        (checked when the config loads)."""
        raw = self.seal.key
        if not raw:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.site_code):
                raise ConfigError(f"门店代码 \"{self.site_code}\" 不能用作封存密钥的文件名；"
                                  f"请在 config.toml 的 [seal] key 中写明密钥文件的路径",
                                  key="seal.key")
            raw = f"~/.config/dealerdocs/{self.site_code}.seal.key"
        try:
            p = Path(raw).expanduser()
        except RuntimeError:
            raise ConfigError(f"无法确定当前用户的主目录，不能展开 seal.key = \"{raw}\"；"
                              f"请在 config.toml 的 [seal] key 中写明密钥文件的完整路径",
                              key="seal.key") from None
        return (p if p.is_absolute() else self.base_dir / p).resolve()

    def document_kind(self, kind: str) -> DocumentKind:
        """How PDFs of document kind ``kind`` are finished (``[documents.<kind>]``)."""
        return self.documents.get(kind, DocumentKind())

    @property
    def certificate_path(self) -> Path | None:
        """The store's PKCS#12 file (``[signing] certificate``), absolute; None = none."""
        if not self.signing.certificate:
            return None
        p = Path(self.signing.certificate).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def user_label(self, login: str) -> str:
        """"张伟（zhang）" for a known login, the login itself otherwise (a former user)."""
        user = self.users.get(login)
        return f"{user.name}（{login}）" if user else login

    def user(self, login: str) -> User:
        from .errors import PermissionDenied

        try:
            return self.users[login]
        except KeyError:
            known = "、".join(sorted(self.users)) or "（无）"
            raise PermissionDenied(f"未知用户 \"{login}\"：config.toml 中的用户有 {known}",
                                   user=login) from None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def role_label(self, role: str) -> str:
        return self.roles.get(role, role)

    def role_access(self, role: str) -> RoleAccess:
        """A role's reach; a role without an ``[access.<role>]`` table sees its own cases."""
        return self.access.get(role, RoleAccess())


def load_config(path: str | Path) -> Config:
    """Read and check config.toml; every problem is a :class:`ConfigError` naming the key."""
    path = Path(path).expanduser().resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"找不到配置文件 {path}（可用 dealerdocs init DIR 生成，或用 --config 指定）",
                          path=str(path)) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"配置文件 {path} 不是有效的 TOML：{err}", path=str(path)) from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"无法读取配置文件 {path}：{err}", path=str(path)) from err
    if isinstance(raw.get("libreoffice"), dict) and "unoserver" in raw["libreoffice"]:
        raise ConfigError(f"{path.name}: libreoffice.unoserver 已不再使用：常驻的 LibreOffice 现由本程序的"
                          f"工作进程经 python3-uno 驱动，不再需要 unoserver；请删去这一行（需要时用 "
                          f"libreoffice.python 指明带 uno 模块的 Python）", key="libreoffice.unoserver",
                          path=str(path))
    overrides = raw.pop("policy", {})
    # each store's [stores.<code>.policy] is resolved like [policy], over it
    store_overrides = {code: t.pop("policy", {}) for code, t in raw.get("stores", {}).items()
                       if isinstance(t, dict)}
    try:
        config = build(Config, raw, ConfigError,
                       exclude={"base_dir", "login", "policy", "current_store", "origin"})
    except ConfigError as err:
        raise ConfigError(f"{path.name}: {err.message}", path=str(path), **err.details) from None
    users = {login: dataclasses.replace(u, login=login) for login, u in config.users.items()}
    stores = {code: dataclasses.replace(s, code=code) for code, s in config.stores.items()}
    config = dataclasses.replace(config, users=users, stores=stores, base_dir=path.parent)
    _check(config, path)
    for key, table in [("policy", overrides),
                       *((f"stores.{c}.policy", t) for c, t in store_overrides.items())]:
        if not isinstance(table, dict):
            raise ConfigError(f"{path.name}: {key} 应为表（table）", key=key, path=str(path))
    if not config.workflows_dir.is_dir():  # loading the workflows reports the missing folder
        return config
    declared = declared_policy(config.workflows_dir)
    try:
        values = resolve_policy(declared, overrides, path.name)
        stores = {code: dataclasses.replace(
            site, policy=resolve_policy(declared, {**overrides, **store_overrides[code]},
                                        f"{path.name} [stores.{code}]"))
            for code, site in config.stores.items()}
    except ConfigError as err:
        raise ConfigError(err.message, path=str(path), **err.details) from None
    return dataclasses.replace(config, policy=values, stores=stores)


def _check(config: Config, path: Path) -> None:
    for login, user in config.users.items():
        roles = [(f"users.{login}.roles[{i}]", r) for i, r in enumerate(user.roles)]
        for code, listed in user.stores.items():
            key = f"users.{login}.stores.{code}"
            if not config.stores:
                raise ConfigError(f"{path.name}: {key}：只有写了 [stores.<门店代码>] 的集团配置才能按门店分配角色；"
                                  f"单店请直接写 users.{login}.roles", key=key, path=str(path))
            if code not in config.stores:
                raise ConfigError(f"{path.name}: {key}：没有门店 \"{code}\"（[stores] 有：{'、'.join(config.stores)}）",
                                  key=key, path=str(path))
            roles += [(f"{key}[{i}]", r) for i, r in enumerate(listed)]
        for key, role in roles:
            if role not in config.roles:
                raise ConfigError(
                    f"{path.name}: {key} = \"{role}\" 不是已定义的角色"
                    f"（可用：{', '.join(config.roles)}）", key=key, path=str(path))
            if key.startswith(f"users.{login}.stores.") and config.role_access(role).group:
                raise ConfigError(f"{path.name}: {key} = \"{role}\" 是集团角色，应写在 users.{login}.roles 中"
                                  f"（在所有门店有效）", key=key, path=str(path))
    _check_stores(config, path)
    for key, series in config.series.items():
        if series.reset not in ("yearly", "never"):
            raise ConfigError(f"{path.name}: series.{key}.reset 应为 \"yearly\" 或 \"never\"，"
                              f"收到 \"{series.reset}\"", key=f"series.{key}.reset", path=str(path))
        if not 1 <= series.width <= 12:
            raise ConfigError(f"{path.name}: series.{key}.width 应在 1–12 之间",
                              key=f"series.{key}.width", path=str(path))
    for role, reach in config.access.items():
        key = f"access.{role}"
        if role not in config.roles:
            raise ConfigError(f"{path.name}: {key}：\"{role}\" 不是已定义的角色（可用：{', '.join(config.roles)}）",
                              key=key, path=str(path))
        if reach.cases not in ("own", "all", "none"):
            raise ConfigError(f"{path.name}: {key}.cases 应为 \"own\"（本人的案件）、\"all\"（全部）或 "
                              f"\"none\"，收到 \"{reach.cases}\"", key=f"{key}.cases", path=str(path))
        if reach.documents not in ("cases", "all"):
            raise ConfigError(f"{path.name}: {key}.documents 应为 \"cases\" 或 \"all\"，收到 "
                              f"\"{reach.documents}\"", key=f"{key}.documents", path=str(path))
    privacy = config.privacy
    for workflow, days in privacy.retention_days.items():
        if not 1 <= days <= 36500:
            raise ConfigError(f"{path.name}: privacy.retention_days.{workflow} 应在 1–36500 天之间，收到 {days}",
                              key=f"privacy.retention_days.{workflow}", path=str(path))
        if workflow in privacy.keep:
            raise ConfigError(f"{path.name}: {workflow} 不能既有保留期（privacy.retention_days）又整体保留"
                              f"（privacy.keep）", key=f"privacy.keep.{workflow}", path=str(path))
    for workflow, reason in privacy.keep.items():
        if not reason.strip():
            raise ConfigError(f"{path.name}: privacy.keep.{workflow} 应写明保留的依据",
                              key=f"privacy.keep.{workflow}", path=str(path))
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path.name}: timezone = \"{config.timezone}\" 不是有效的时区名"
                          f"（例如 \"Asia/Shanghai\"）", key="timezone", path=str(path)) from None
    if not 0 <= config.libreoffice.warm_instances <= 8:
        raise ConfigError(f"{path.name}: libreoffice.warm_instances 应在 0–8 之间",
                          key="libreoffice.warm_instances", path=str(path))
    _check_seal(config, path)
    base = config.verification.base_url
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base) or base.endswith("/"):
        raise ConfigError(f"{path.name}: verification.base_url 应为本店网页版的地址，以 http:// 或 https:// "
                          f"开头、末尾不带 /（如 \"https://docs.example.com\"），收到 \"{base}\"",
                          key="verification.base_url", path=str(path))
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", config.signing.password_env):
        raise ConfigError(f"{path.name}: signing.password_env 应为环境变量名（如 DEALERDOCS_CERT_PASSWORD），"
                          f"收到 \"{config.signing.password_env}\"；证书密码不能写在配置文件中",
                          key="signing.password_env", path=str(path))
    signed = [k for k, d in config.documents.items() if d.sign]
    if signed and not config.signing.certificate:
        raise ConfigError(f"{path.name}: documents.{signed[0]}.sign = true，但 [signing] certificate 为空；"
                          f"请指明本店证书（PKCS#12，可用 dealerdocs cert make-test 生成测试证书）",
                          key=f"documents.{signed[0]}.sign", path=str(path))
    if config.store:
        from .store.postgres import check_url, is_database_url

        if not is_database_url(config.store):
            raise ConfigError(f"{path.name}: store 应为 PostgreSQL 连接地址（postgresql://用户@主机:端口/库名），"
                              f"或留空使用 [paths] store 目录中的内置数据库，收到 \"{config.store}\"",
                              key="store", path=str(path))
        check_url(config.store)
    if config.files not in FILES:
        raise ConfigError(f"{path.name}: files 应为 \"outbox\"（输出目录）或 \"database\"（存入 PostgreSQL "
                          f"数据库），收到 \"{config.files}\"", key="files", path=str(path))
    if config.files == "database" and not config.store:
        raise ConfigError(f"{path.name}: files = \"database\" 只能与 PostgreSQL 数据库一起使用"
                          f"（store = \"postgresql://…\"）；内置数据库的文件存放在输出目录，"
                          f"请改为 files = \"outbox\"", key="files", path=str(path))
    for key, value in (("libreoffice.timeout", config.libreoffice.timeout),
                       ("lock_timeout", config.lock_timeout)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{path.name}: {key} 应为大于 0 的秒数，收到 {value!r}", key=key,
                              path=str(path))


STORE_CODE = re.compile(r"[A-Z0-9][A-Z0-9_]{0,15}")
NUMBER_PREFIX = re.compile(r"[A-Z][A-Z0-9]{0,9}")


def _check_stores(config: Config, path: Path) -> None:
    """Store codes and number prefixes: short capitals and digits (they go into document
    numbers, file names and URLs), each prefix used by one store only."""
    prefixes: dict[str, str] = {}
    for code, site in config.stores.items():
        key = f"stores.{code}"
        if code == GROUP or not STORE_CODE.fullmatch(code):
            raise ConfigError(f"{path.name}: {key}：门店代码只能由大写字母、数字和下划线组成（至多 16 位），"
                              f"收到 \"{code}\"", key=key, path=str(path))
        if not NUMBER_PREFIX.fullmatch(site.prefix):
            raise ConfigError(f"{path.name}: {key}.prefix 应为大写字母开头的字母数字（至多 10 位，如 \"BJ01\"），"
                              f"收到 \"{site.prefix}\"", key=f"{key}.prefix", path=str(path))
        if site.prefix in prefixes:
            raise ConfigError(f"{path.name}: {key}.prefix = \"{site.prefix}\" 已用于门店 {prefixes[site.prefix]}；"
                              f"每个门店的单据编号前缀必须不同", key=f"{key}.prefix", path=str(path))
        prefixes[site.prefix] = code
        for name in ("name", "uscc", "address", "phone", "bank", "account"):
            if not str(getattr(site, name)).strip():
                raise ConfigError(f"{path.name}: {key}.{name} 不能为空（门店的单据上要打印）",
                                  key=f"{key}.{name}", path=str(path))


def _check_seal(config: Config, path: Path) -> None:
    """The seal key must not live where the store's data lives: whoever could rewrite the
    store could then also make a seal line that matches the rewrite."""
    try:
        key = config.seal_key_path
    except ConfigError:
        return  # no usable default path: reported by the commands that need the key
    for name, label in (("store", "数据库目录"), ("outbox", "输出目录")):
        folder = config.path(name).resolve()
        if key == folder or key.is_relative_to(folder):
            raise ConfigError(f"{path.name}: seal.key = \"{key}\" 在{label} {folder} 之内；"
                              f"封存密钥必须放在数据库与输出目录之外（如 ~/.config/dealerdocs/ 或 U 盘），"
                              f"否则能改写数据库的人也能伪造封存", key="seal.key", path=str(path))
