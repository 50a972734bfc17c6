"""The demo scenario on the embedded store (``make demo``).

A day at the sales desk: four quotes are drafted and issued; one is revised after the customer
haggles (its first version is superseded), one is accepted, one was issued ten days ago and has
now expired, one is cancelled. Real .docx and PDF files land in the configured outbox; the
script ends with the cases and the register, and checks every archived file's hash.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from engine import DealerDocsError, Engine, load_config  # noqa: E402
from engine.cli import table  # noqa: E402
from engine.engine import local_now  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config.toml")
    args = parser.parse_args()
    config = load_config(args.config)
    base = json.loads((HERE / "quote.json").read_text(encoding="utf-8"), parse_float=Decimal)
    today = local_now(config.tz).date()

    def quote(**changes):
        data = {**base, "valid_until": (today + timedelta(days=7)).isoformat(),
                "delivery_estimate": (today + timedelta(days=20)).isoformat()}
        data.update(changes)
        return data

    with Engine(config) as eng:
        # Issued ten days ago and valid for a week: the customer never came back.
        past = Engine(config, converter=eng.converter,
                      clock=lambda: local_now(config.tz) - timedelta(days=10))
        stale = past.create("quote", quote(customer_name="赵磊", customer_mobile="13912345678",
                                           valid_until=(today - timedelta(days=3)).isoformat(),
                                           payment_method="全款", lender=None,
                                           down_payment=None, loan_term_months=None,
                                           monthly_payment=None), "li")
        past.fire(stale.id, "issue", "li")
        eng.fire(stale.id, "expire", "li")

        revised = eng.create("quote", quote(), "zhang")
        eng.fire(revised.id, "issue", "zhang")
        eng.fire(revised.id, "revise", "wang", {
            "discount": "9500.00",
            "remarks": "经理审批追加优惠 1,500 元；客户要求 12 月中旬前交车。"})

        accepted = eng.create("quote", quote(customer_name="孙丽", customer_mobile="15011112222",
                                             colour="曜石黑", payment_method="全款", lender=None,
                                             down_payment=None, loan_term_months=None,
                                             monthly_payment=None, accessories=[]), "zhang")
        eng.fire(accepted.id, "issue", "zhang")
        eng.fire(accepted.id, "accept", "zhang")

        cancelled = eng.create("quote", quote(customer_name="周婷 & 吴昊",
                                              customer_mobile="18600001111"), "li")
        eng.fire(cancelled.id, "cancel", "li")

        mine = {stale.id, revised.id, accepted.id, cancelled.id}
        cases = [c for c in eng.cases() if c["id"] in mine]
        print("案件")
        print(table(["案件", "状态", "客户", "合计"],
                    [[c["id"], c["state_label"], c["summary"], c["total"] or ""]
                     for c in cases]))
        docs = [d for d in eng.documents() if d["case_id"] in mine]
        print("\n已出具文档")
        print(table(["编号", "版本", "案件", "状态", "PDF"],
                    [[d["number"], str(d["version"]), d["case_id"], d["status"], d["pdf"]]
                     for d in docs]))
        problems = eng.verify()
        print(f"\n校验：{'通过' if not problems else f'{len(problems)} 个文件有问题'}"
              f"（登记文档共 {len(eng.documents())} 份）")
        return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DealerDocsError as err:
        print(f"错误：{err.message}", file=sys.stderr)
        sys.exit(1)
