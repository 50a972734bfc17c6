"""The demo scenario on the embedded store (``make demo``).

A day at the sales desk: quotes are drafted and issued; one is revised after the customer
haggles (its first version is superseded), one was issued ten days ago and has now expired,
one is cancelled. The showroom's 三表一卡: the front desk registers the morning's walk-ins and
calls, a returning customer goes to the consultant who owns him and a colleague is refused,
follow-ups set the levels and open a tracking card, a loss is approved; the register, the
traffic table, the consultants' daily check, the funnel and the loss analysis come out. Then the
whole sales chain twice: an individual buyer whose accepted quote
becomes a contract that needs the sales manager's approval (discount above the store's
threshold), and a company buyer whose contract goes straight to approval; both are signed,
the cars pass PDI and are handed over (which fulfils the contracts) and followed up. Real .docx
and PDF files land in the configured outbox; the script ends with the cases and the register,
and checks every archived file's hash.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from engine import DealerDocsError, Engine, load_config  # noqa: E402
from engine.cli import table  # noqa: E402
from engine.engine import local_now  # noqa: E402


def elsewhen(eng: Engine, clock) -> Engine:
    """The demo's store at another moment (ten days ago, this afternoon, three days on): an
    engine on ``clock`` sharing ``eng``'s store connection and converter, so it holds nothing
    of its own to close (on PostgreSQL, no connection pool per scene)."""
    return Engine(eng.config, converter=eng.converter, clock=clock, shared=eng.whole_store)


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
        # The carmaker's price list in the model catalogue (车型库, kept by the sales manager)
        # and two cars in stock (库存, registered by the stock keeper 高磊 and put in the yard):
        # the quotes below take their model and list price from the catalogue, the contracts
        # reserve these cars by VIN, and the handovers mark them 已交车.
        catalogue = {}
        for series, model, price, energy, nev in (
                ("瑞虎8 PRO", "1.6TGDI DCT 卓越版", "139900.00", "燃油", False),
                ("风云A8", "2026款 长续航 领航版", "119900.00", "插电混动", True)):
            catalogue[model] = eng.create("vehicle_model", {
                "brand": "奇瑞", "series": series, "model": model, "list_price": price,
                "energy_type": energy, "nev_listed": nev, "valid_from": today.isoformat(),
                "exterior_colours": "极地白、曜石黑、星空蓝", "interior_colours": "黑色、棕色"},
                "wang").id
        for vin, engine_number, colour, place in (
                ("LSJA24U62JG269225", "SQRE4T15C2501234", "极地白", "A-01"),
                ("LDC613P23A1305189", "EC8M2503001", "曜石黑", "A-02")):
            car = eng.create("stock", {"vin": vin, "engine_number": engine_number, "brand": "奇瑞",
                                       "series": "瑞虎8 PRO", "model": "1.6TGDI DCT 卓越版",
                                       "colour": colour, "certificate_number": f"WCG{vin[-6:]}"},
                             "gao")
            eng.fire(car.id, "arrive", "gao", {"arrival_date": today.isoformat(),
                                               "storage_place": place})

        # Issued ten days ago and valid for a week: the customer never came back.
        past = elsewhen(eng, lambda: local_now(config.tz) - timedelta(days=10))
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

        # The sales chain, individual buyer: the accepted quote becomes a contract. The quote
        # names the model by its catalogue entry: brand, series, model and list price come
        # from there, and the purchase tax is computed from the price.
        chain = eng.create("quote", {**{k: v for k, v in quote().items()
                                        if k not in ("brand", "series", "model", "list_price",
                                                     "nev_listed")},
                                     "vehicle_model": catalogue["1.6TGDI DCT 卓越版"]}, "zhang")
        eng.fire(chain.id, "issue", "zhang")
        eng.fire(chain.id, "accept", "zhang")
        dates = {"deposit_date": today.isoformat(),
                 "payment_deadline": (today + timedelta(days=10)).isoformat(),
                 "delivery_deadline": (today + timedelta(days=20)).isoformat()}
        contract_data = json.loads((HERE / "contract.json").read_text(encoding="utf-8"),
                                   parse_float=Decimal)
        from_quote = {k: v for k, v in contract_data.items()
                      if k not in ("vehicle_price", "discount", "accessories")}
        individual = eng.create("contract", {**from_quote, **dates}, "zhang", source=chain.id)
        eng.fire(individual.id, "submit", "zhang")          # 8,000 off: above 5 % → manager
        eng.fire(individual.id, "approve", "wang")
        contracts = [individual.id]

        # Company buyer with an agent, discount within the threshold: approved on submit.
        company = eng.create("contract", {
            **contract_data, **dates, "buyer_type": "company",
            "customer_name": "北京星河物流有限公司", "buyer_id_number": "91110108772551611J",
            "buyer_legal_representative": "周星河", "buyer_address": "北京市朝阳区酒仙桥路 10 号",
            "agent_name": "吴昊", "agent_id_number": "360426199101010071",
            "agent_mobile": "13700001111", "customer_mobile": "13700001111",
            "vin": "LDC613P23A1305189", "engine_number": "EC8M2503001",
            "dispute_resolution": "仲裁", "arbitration_commission": "北京仲裁委员会",
            "agency_services": ["车辆上牌"], "consultant": "li"}, "li")
        eng.fire(company.id, "submit", "li")
        contracts.append(company.id)

        delivery_data = json.loads((HERE / "delivery.json").read_text(encoding="utf-8"),
                                   parse_float=Decimal)
        deliveries = []
        for contract_id, who in zip(contracts, ("zhang", "li")):
            eng.fire(contract_id, "issue", who)
            eng.fire(contract_id, "sign", who, {"signed_date": today.isoformat()})
            car = eng.case(contract_id, actor=who)["data"]   # ID and mobile masked: not needed
            # the buyer and the car come from the contract (create_from), not from the example
            carried = eng.workflow("delivery").create_from["contract"].fields
            booking = {**{k: v for k, v in delivery_data.items() if k not in carried},
                       "delivery_date": today.isoformat(), "pdi_date": today.isoformat()}
            if car["buyer_type"] == "company":
                booking.update(receiver="委托代理人", agent_name="吴昊",
                               agent_id_number="360426199101010071")
            delivery = eng.create("delivery", booking, who, source=contract_id)
            eng.fire(delivery.id, "confirm", who)
            eng.fire(delivery.id, "pdi", who)
            eng.fire(delivery.id, "deliver", who)
            eng.fire(delivery.id, "follow_up", who, {
                "followup_date": today.isoformat(), "followup_by": "高磊",
                "followup_result": "满意"})
            deliveries.append(delivery.id)

        # A day of test drives (the clock is set to this afternoon so the morning's slots are
        # over): one drive completed and evaluated, a double booking of the same car refused,
        # one customer who never came.
        afternoon = datetime.combine(today, time(16, 0), tzinfo=config.tz)
        desk = elsewhen(eng, lambda: afternoon)
        drive_data = json.loads((HERE / "test_drive.json").read_text(encoding="utf-8"))
        slot = lambda h, m: f"{today.isoformat()}T{h:02d}:{m:02d}"  # noqa: E731
        drive = desk.create("test_drive", {**drive_data, "slot_start": slot(10, 0),
                                           "slot_end": slot(10, 45)}, "zhang")
        try:
            desk.create("test_drive", {**drive_data, "customer_name": "钱多多",
                                       "customer_mobile": "18912345678",
                                       "slot_start": slot(10, 30), "slot_end": slot(11, 0)}, "li")
        except DealerDocsError as refusal:
            print(f"（演示）重复预约被拒绝：{refusal.message}\n")
        no_show = desk.create("test_drive", {
            **drive_data, "customer_name": "钱多多", "customer_mobile": "18912345678",
            "experience_type": "试乘", "driver_name": None, "driver_id_number": None,
            "licence_number": None, "licence_class": None, "licence_first_issued": None,
            "licence_valid_until": None, "slot_start": slot(11, 0), "slot_end": slot(11, 30),
            "consultant": "li"}, "li")
        desk.fire(no_show.id, "no_show", "li")
        desk.fire(drive.id, "sign_agreement", "zhang")
        desk.fire(drive.id, "depart", "zhang", {"departure_time": slot(10, 3),
                                                "departure_odometer": 1200})
        desk.fire(drive.id, "return_car", "zhang", {
            "return_time": slot(10, 41), "return_odometer": 1209, "fuel_level": "3/4",
            "damage": False})
        desk.fire(drive.id, "evaluate", "zhang", {
            "impressions": "动力充沛；底盘扎实；座椅舒适", "rating_power": "很满意",
            "rating_handling": "很满意", "rating_braking": "基本满意", "rating_comfort": "很满意",
            "rating_space": "很满意", "rating_service": "很满意",
            "rating_car_condition": "很满意", "rating_route_length": "基本满意",
            "rating_route_items": "很满意", "rating_overall": "很满意",
            "helped_decision": True, "comments": "希望增加高速路段"})
        register = desk.report("test-drives", today, today, actor="wang")

        # The showroom this morning (三表一卡): the front desk (xu) registers every walk-in and
        # call; 刘晓明 already has a file (the quotes above made it): he goes to zhang, and li,
        # trying to take him, is refused with the owner's name.
        at = lambda h, m: f"{today.isoformat()}T{h:02d}:{m:02d}"  # noqa: E731
        # the sales manager sets the day's rota; new visitors nobody names go round it
        duty = desk.create("duty", {"on_duty": [{"consultant": "zhang"}, {"consultant": "li"}]},
                           "wang")
        visits = [desk.create("reception", {
            "kind": kind, "arrived_at": at(h, m), "party_size": size, "customer_name": name,
            "customer_mobile": mobile, "intended_model": model, "source": source,
            **({"consultant": who} if who else {})}, "xu")
            for kind, h, m, size, name, mobile, model, source, who in (
                ("来店", 9, 20, 2, "马建国", "13511112222", "瑞虎8 PRO", "网络", None),   # zhang's turn
                ("来电", 9, 45, 1, None, None, "艾瑞泽8", None, None),                   # li's turn
                ("来店", 10, 30, 3, "何静", "13622223333", "瑞虎9", "亲友", "li"),
                ("来店", 14, 10, 1, "刘晓明", base["customer_mobile"], "瑞虎8 PRO", None, None))]
        try:
            desk.create("reception", {"kind": "来店", "arrived_at": at(14, 15),
                                      "customer_name": "刘晓明",
                                      "customer_mobile": base["customer_mobile"]}, "li")
        except DealerDocsError as refusal:
            print(f"（演示）老客户归原销售顾问：{refusal.message}\n")
        ma = desk.case(visits[0].id, actor="zhang")["links"]["customer"][0]
        he = desk.case(visits[2].id, actor="li")["links"]["customer"][0]
        desk.fire(visits[0].id, "complete", "zhang", {
            "left_at": at(10, 40), "reception_notes": "介绍瑞虎8 PRO 卓越版并试乘，关注油耗和后排空间",
            "level_after": "B", "next_follow_up": (today + timedelta(days=3)).isoformat(),
            "purchase_horizon": "30 天内", "outcome": "继续跟进"})   # the card's first row
        desk.fire(ma, "follow_up", "zhang", {
            "fu_date": today.isoformat(), "fu_method": "到店", "fu_content": "试乘后介绍金融方案",
            "fu_feedback": "希望多给一年保养", "fu_response": "请示经理后回复",
            "new_level": "A", "next_follow_up": (today + timedelta(days=5)).isoformat()})
        card = desk.fire(ma, "print_card", "zhang").documents[0]
        desk.fire(he, "follow_up", "li", {
            "fu_date": today.isoformat(), "fu_method": "电话", "fu_content": "询问试驾时间",
            "new_level": "C", "next_follow_up": (today + timedelta(days=20)).isoformat()})
        desk.fire(he, "request_lost", "li", {
            "lost_reason": "购买其它品牌", "lost_brand": "比亚迪", "lost_model": "宋PLUS DM-i",
            "lost_note": "已在比亚迪店交定金"})
        desk.fire(he, "approve_lost", "qian", {"review_note": "同意，竞品价格低 1.2 万"})
        month = today.replace(day=1)
        showroom = {name: desk.report(name, start, today, ("xlsx", "pdf"), actor="wang")
                    for name, start in (("reception", today), ("traffic", month),
                                        ("daily_check", today), ("funnel", month),
                                        ("lost", month))}

        # An inspection by the carmaker's supervisor 20 days ago with three findings: one closed
        # after a first closure request was refused, one extended once, one cancelled. Each
        # step happens on its own day (the clock is moved), as it would over weeks.
        def on(days_ago: int) -> Engine:
            moment = local_now(config.tz) - timedelta(days=days_ago)
            return elsewhen(eng, lambda: moment)

        base = json.loads((HERE / "rectification.json").read_text(encoding="utf-8"))
        inspected = (today - timedelta(days=20)).isoformat()
        plan = {"root_cause": "试驾管理制度未落实到人", "verification_method": "现场照片与归档记录",
                "corrective_action": "张贴试驾路线图；协议书每日归档，销售经理每周抽查"}
        items = []
        for finding, deadline, owner in (
                (base["finding"], 10, "李娜"),
                ("展厅休息区未摆放最新版车型配置表", 5, "张伟"),
                ("交车区背景板使用旧版品牌标识", 15, "陈刚")):
            item = on(20).create("rectification", {
                **base, "finding": finding, "owner": owner, "inspection_date": inspected,
                "deadline": (today + timedelta(days=deadline)).isoformat()}, "sun")
            on(19).fire(item.id, "submit_plan", "chen", plan)
            on(18).fire(item.id, "approve_plan", "sun", {"review_opinion": "同意按计划整改"})
            items.append(item.id)
        evidence = [str(p) for p in sorted((HERE / "evidence").iterdir())]
        closing = {"completion_summary": "路线图已张贴；缺失的 2 份协议书已补签归档",
                   "completion_date": (today - timedelta(days=6)).isoformat(),
                   "evidence": evidence}
        on(6).fire(items[0], "request_closure", "chen", closing)
        on(5).fire(items[0], "reject_closure", "sun", {"review_opinion": "归档记录缺销售经理签字"})
        on(2).fire(items[0], "request_closure", "chen", closing)
        on(1).fire(items[0], "approve_closure", "sun", {"review_opinion": "同意销项"})
        on(4).fire(items[1], "request_extension", "chen", {
            "requested_deadline": (today + timedelta(days=12)).isoformat(),
            "extension_reason": "新版配置表需厂家统一印制，预计下周到货",
            "interim_measures": "先放置打印版配置表"})
        on(3).fire(items[1], "approve_extension", "zhou", {"review_opinion": "同意延期一次"})
        on(3).fire(items[2], "request_cancel", "chen", {
            "cancel_ground": "标准已变更", "cancel_reason": "厂家已于本月发布新版标识规范，旧版背景板不再考核"})
        on(2).fire(items[2], "approve_cancel", "zhou", {"review_opinion": "同意取消"})
        due_list = eng.due(within=14, actor="chen")
        closed_loop = eng.report("rectification", actor="chen")

        # After the sale: each handover scheduled its calls (新客户回访: the day and day 3 by the
        # consultant, day 7 by a manager, a sample a month on). On day 3 zhang reaches the first
        # buyer, who names a friend (a new customer of zhang's) and complains (a complaint case):
        # it is dispatched and handled, the buyer is unhappy once, it is handled again, confirmed
        # and closed. The company buyer's complaint is escalated (升级) and closes only with the
        # carmaker's regional manager. These steps happen days ahead (the clock is moved).
        def ahead(hours: float) -> tuple[Engine, str]:
            moment = local_now(config.tz) + timedelta(hours=hours)
            return (elsewhen(eng, lambda: moment),
                    moment.replace(tzinfo=None).isoformat(timespec="minutes"))

        items = ("showroom", "greeting", "product", "test_drive", "paperwork", "ceremony",
                 "features", "care_contact", "manners", "promises")
        calls = {eng.case(c, actor="wang")["data"]["call_kind"]: c
                 for c in eng.case(deliveries[0], actor="wang")["links"]["care_call"]}
        day3, moment = ahead(72)
        said = day3.fire(calls["三日回访"], "record", "zhang", {
            "reached": "是", "attempted_at": moment, "satisfaction": "一般",
            **{f"q_{k}": "已执行" for k in items}, "q_features": "未执行",
            "q_features_note": "车机互联未讲解", "note": "客户对车辆满意，对交车讲解不满意",
            "referrals": [{"name": "孙悦", "mobile": "13911112222", "note": "同事，想看瑞虎9"}],
            "has_complaint": True, "complaint_level": "一般", "complaint_category": "交车",
            "complaint_description": "交车时未讲解车机互联，说好的原厂脚垫也没有送",
            "complaint_ask": "补送脚垫并上门讲解"})
        first_complaint = next(i for i in said.spawned if i.startswith("TS-"))
        handling = {"cause": "交车检查单未逐项核对", "solution": "补送原厂脚垫，顾问上门讲解车机互联",
                    "responsible_person": "张伟", "corrective_action": "交车前由展厅主管复核交车检查单"}
        ahead(73)[0].fire(first_complaint, "assign", "wang", {"handler": "wang", "department": "销售部"})
        ahead(75)[0].fire(first_complaint, "handle", "zhang", handling)
        step, moment = ahead(78)
        step.fire(first_complaint, "confirm", "qian", {"verdict": "不满意", "callback_at": moment,
                                                        "callback_note": "脚垫不是原厂的"})
        ahead(80)[0].fire(first_complaint, "handle", "zhang",
                          {**handling, "solution": "更换为原厂脚垫并致歉，顾问上门讲解车机互联"})
        step, moment = ahead(82)
        step.fire(first_complaint, "confirm", "qian", {"verdict": "满意", "callback_at": moment,
                                                        "callback_note": "客户已收到原厂脚垫"})
        ahead(83)[0].fire(first_complaint, "close", "wang", {"close_note": "已闭环"})
        escalated = ahead(96)[0].create("complaint", {
            "source": "客户来电", "category": "承诺未兑现", "customer_mobile": "13700001111",
            "description": "合同约定的代办上牌已超过两周仍未办完", "customer_ask": "三天内办完并赔偿误工",
            "vehicle_model": "瑞虎8 PRO"}, "li").id
        ahead(97)[0].fire(escalated, "escalate", "li", {
            "escalate_to": "升级", "escalation_reason": "重复抱怨", "escalation_note": "第二次来电，情绪激动"})
        ahead(98)[0].fire(escalated, "assign", "wang", {"handler": "wang", "department": "销售部"})
        ahead(100)[0].fire(escalated, "handle", "li", {
            "cause": "车管所预约排队，未及时告知客户", "solution": "次日办完上牌，赠送一次保养",
            "responsible_person": "李娜", "corrective_action": "代办进度每三天告知客户一次"})
        step, moment = ahead(103)
        step.fire(escalated, "confirm", "qian", {"verdict": "接受", "callback_at": moment,
                                                  "callback_note": "客户接受赠送保养"})
        ahead(104)[0].fire(escalated, "close", "wang", {"close_note": "请区域经理审批"})
        ahead(110)[0].fire(escalated, "oem_approve", "zhou", {"oem_opinion": "同意关闭"})
        record = ahead(111)[0].fire(escalated, "print_record", "wang").documents[0]
        stock = {name: eng.report(name, today, today, ("xlsx", "pdf"), actor="wang")
                 for name in ("stock", "models")}
        # a snapshot (截至 today), not a period; the month's quotes against its sales per model
        stock["stock_by_model"] = eng.report("stock_by_model", None, None, ("xlsx", "pdf"),
                                             actor="wang")
        stock["models_quoted_sold"] = eng.report("models_quoted_sold", month, today,
                                                 ("xlsx", "pdf"), actor="wang")
        care_end = today + timedelta(days=40)
        care = {name: eng.report(name, month, care_end, ("xlsx", "pdf"), actor="wang")
                for name in ("care_calls", "care_summary", "complaints", "complaint_closure")}

        # Document control: copies of the first contract go to finance (printed as controlled
        # copies) and to the archive; one is lost and replaced under a new copy number. The
        # quote revised above was recalled and stamped automatically when it was superseded.
        handover = eng.case(contracts[0], actor="zhang")["documents"][-1]["number"]
        eng.dispatch(handover, to="周会计", dept="财务部", copies=2, actor="zhao", print_copies=True)
        eng.dispatch(handover, to="档案室", dept="行政部", actor="zhao")
        eng.recall(handover, reason="丢失", copy=3, actor="zhao")
        quote_life = eng.document(eng.case(revised.id, actor="zhang")["documents"][0]["number"],
                                  actor="zhao")
        register_file = eng.register_export("xlsx", config.outbox_dir / "reports" /
                                            "文件发放回收记录表.xlsx", actor="zhao")
        register_pdf = eng.register_export("pdf", config.outbox_dir / "reports" /
                                           "文件发放回收记录表.pdf", actor="zhao")

        mine = {stale.id, revised.id, accepted.id, cancelled.id, chain.id, *contracts,
                *deliveries, drive.id, no_show.id, *items, *(v.id for v in visits), ma, he, duty.id}
        cases = [c for c in eng.cases(actor="wang") if c["id"] in mine]  # a manager sees all
        print("案件")
        print(table(["案件", "状态", "摘要", "合计"],
                    [[c["id"], c["state_label"], c["summary"], c["total"] or ""]
                     for c in cases]))
        docs = [d for d in eng.documents(actor="zhao") if d["case_id"] in mine]
        print("\n已出具文档")
        print(table(["编号", "文档", "版本", "案件", "状态", "PDF"],
                    [[d["number"], d["title"], str(d["version"]), d["case_id"], d["status"],
                      d["pdf"]]
                     for d in docs]))
        print("\n整改项目到期提醒（14 天内）")
        print(table(["项目", "状态", "责任人", "期限", "逾期/剩余"],
                    [[r["id"], r["state_label"], r["owner"] or "", r["deadline"],
                      f"逾期 {r['overdue_days']} 天" if r["overdue"] else f"剩余 {r['days_left']} 天"]
                     for r in due_list]) or "（无）")
        print(f"\n整改问题闭环管理表（{closed_loop['rows']} 条）：")
        for path in closed_loop["files"].values():
            print(f"  {path}")
        print(f"\n文件发放回收记录表（{register_file['rows']} 行）：")
        print(f"  {register_file['file']}\n  {register_pdf['file']}")
        if quote_life.get("stamped_pdf"):
            print(f"  换版收回的报价单加盖「{quote_life['stamp']}」：{quote_life['stamped_pdf']}")
        print(f"\n意向客户跟踪卡 {card.number}：{card.pdf}")
        for result in showroom.values():
            print(f"\n{result['title']}（{result['rows']} 行）：")
            for path in result["files"].values():
                print(f"  {path}")
        print(f"\nSSI抱怨记录表 {record.number}（{escalated}，升级，区域经理审批关闭）：{record.pdf}")
        for result in [*stock.values(), *care.values()]:
            print(f"\n{result['title']}（{result['rows']} 行）：")
            for path in result["files"].values():
                print(f"  {path}")
        print(f"\n试乘试驾登记表（{register['rows']} 条）：")
        for path in register["files"].values():
            print(f"  {path}")
        from engine.diagram import write_diagram

        print("\n状态流转图：")
        for wf in eng.workflows.values():
            print(f"  {write_diagram(wf, config, config.outbox_dir / 'diagrams' / f'{wf.key}.svg')}")
        problems = eng.verify()
        print(f"\n校验：{'通过' if not problems else f'{len(problems)} 个文件有问题'}"
              f"（登记文档共 {eng.document_count()} 份）")
        signable = [u for u in config.users.values() if u.password_hash]
        print("\n网页版：启动后用浏览器打开 http://127.0.0.1:8000/")
        print(f"  .venv/bin/dealerdocs serve --config {args.config}")
        if signable:
            print("  演示用户（密码均为 demo-2026，只供试用；正式使用前用 dealerdocs user set-password 改掉）：")
            for u in signable:
                roles = "、".join(config.role_label(r) for r in u.roles)
                print(f"    {u.login:<6} {u.name}（{roles}）")
        return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DealerDocsError as err:
        print(f"错误：{err.message}", file=sys.stderr)
        sys.exit(1)
