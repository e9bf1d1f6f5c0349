"""EventBridge on moto_server: PutEvents -> rule with an event pattern -> SQS target.
What arrives in the queue, FailedEntryCount for bad entries, and which pattern operators match."""

import json
import time

from _common import attempt, client, err, report, uid

ev = client("events")
sqs = client("sqs")


def queue(name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(url, wait=1):
    out, deadline = [], time.time() + wait
    while time.time() < deadline:
        ms = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for m in ms:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not ms:
            time.sleep(0.1)
    return out


bus = uid("steward-bus")
attempt("CreateEventBus", lambda: ev.create_event_bus(Name=bus))
q_url, q_arn = queue(uid("reviews"))
attempt("PutRule with EventPattern on custom bus",
        lambda: ev.put_rule(Name="review-requested", EventBusName=bus, EventPattern=json.dumps(
            {"source": ["steward.governance"], "detail-type": ["ReviewRequested"]})))
attempt("PutTargets SQS", lambda: ev.put_targets(Rule="review-requested", EventBusName=bus,
                                                Targets=[{"Id": "q", "Arn": q_arn}]),
        ok_if=lambda r: r["FailedEntryCount"] == 0)

detail = {"name": "churn", "version": 3, "review_id": "r-1", "reviewer": "alice"}
res = attempt("PutEvents: 1 matching + 1 non-matching entry",
              lambda: ev.put_events(Entries=[
                  {"EventBusName": bus, "Source": "steward.governance", "DetailType": "ReviewRequested",
                   "Detail": json.dumps(detail), "Resources": ["arn:aws:steward:::model/churn"]},
                  {"EventBusName": bus, "Source": "steward.governance", "DetailType": "ModelRetired",
                   "Detail": "{}"}]),
              ok_if=lambda r: r["FailedEntryCount"] == 0)
got = drain(q_url)
report("OK" if len(got) == 1 else "DIFF", "messages delivered to SQS (expect 1)", len(got))
if got:
    report("INFO", "SQS body = full event envelope", got[0])
    report("OK" if got[0].get("id") == res["Entries"][0].get("EventId") else "DIFF",
           "envelope id == PutEvents EventId", f'{got[0].get("id")} vs {res["Entries"][0].get("EventId")}')
    missing = {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
               "detail"} - set(got[0])
    report("OK" if not missing else "DIFF", "envelope has every AWS top-level field",
           f"missing {sorted(missing)}" if missing else "all present")
    report("OK" if got[0].get("detail") == detail else "DIFF", "detail is a JSON object, not a string",
           type(got[0].get("detail")).__name__)

# Failed entries (AWS: HTTP 200, FailedEntryCount > 0, per-entry ErrorCode/ErrorMessage).
good = {"EventBusName": bus, "Source": "steward.governance", "DetailType": "ReviewRequested",
        "Detail": json.dumps(detail)}
# (entry, True if AWS is documented to fail just that entry with FailedEntryCount=1)
bad = {
    "no Detail": ({"EventBusName": bus, "Source": "steward.governance", "DetailType": "ReviewRequested"}, True),
    "Detail not JSON": ({**good, "Detail": "{not json"}, True),
    "no Source": ({k: v for k, v in good.items() if k != "Source"}, True),
    "Detail a JSON array (AWS wants an object; not checked against AWS)": ({**good, "Detail": "[1]"}, None),
    "unknown EventBusName (not checked against AWS)": ({**good, "EventBusName": "no-such-bus"}, None),
}
for what, (entry, per_entry) in bad.items():
    if per_entry:
        res = attempt(f"PutEvents [{what}, ok entry] (AWS: FailedEntryCount=1)",
                      lambda: ev.put_events(Entries=[entry, good]),
                      ok_if=lambda r: r["FailedEntryCount"] == 1 and "EventId" in r["Entries"][1])
    else:
        try:
            res = ev.put_events(Entries=[entry, good])
            report("INFO", f"PutEvents [{what}, ok entry]", {k: res[k] for k in ("FailedEntryCount", "Entries")})
        except Exception as e:  # noqa: BLE001
            report("INFO", f"PutEvents [{what}, ok entry]", err(e))
    report("INFO", "  -> messages delivered", len(drain(q_url, wait=0.5)))
attempt("PutEvents with 11 entries (AWS: ValidationException, max 10)",
        lambda: ev.put_events(Entries=[{"EventBusName": bus, "Source": "s", "DetailType": "d",
                                        "Detail": "{}"}] * 11),
        expect_error="ValidationException")

# Default bus.
q2_url, q2_arn = queue(uid("default-bus"))
ev.put_rule(Name="all-steward", EventPattern=json.dumps({"source": ["steward.governance"]}))
ev.put_targets(Rule="all-steward", Targets=[{"Id": "q", "Arn": q2_arn}])
ev.put_events(Entries=[{"Source": "steward.governance", "DetailType": "ModelDeployed", "Detail": "{}"}])
report("OK" if len(drain(q2_url)) == 1 else "DIFF", "default bus delivery (no EventBusName)", "checked")

# Pattern operators and target input shaping.
cases = {
    "prefix": ({"detail": {"stage": [{"prefix": "prod"}]}}, {"stage": "production"}, {"stage": "staging"}),
    "anything-but": ({"detail": {"stage": [{"anything-but": ["dev"]}]}}, {"stage": "prod"}, {"stage": "dev"}),
    "numeric": ({"detail": {"risk": [{"numeric": [">", 5]}]}}, {"risk": 7}, {"risk": 3}),
    "exists:false": ({"detail": {"waiver": [{"exists": False}]}}, {"a": 1}, {"waiver": "x"}),
    "nested exact": ({"detail": {"model": {"name": ["churn"]}}}, {"model": {"name": "churn"}},
                     {"model": {"name": "fraud"}}),
    "$or": ({"$or": [{"detail": {"a": [1]}}, {"detail": {"b": [2]}}]}, {"b": 2}, {"a": 2}),
    "wildcard": ({"detail": {"name": [{"wildcard": "ch*n"}]}}, {"name": "churn"}, {"name": "fraud"}),
}
for name, (pattern, yes, no) in cases.items():
    qu, qa = queue(uid("pat"))
    rule = uid("rule")
    try:
        ev.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["p.test"], **pattern}))
        ev.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": qa}])
    except Exception as e:  # noqa: BLE001
        report("DIFF", f"pattern {name}", f"PutRule failed: {e}")
        continue
    ev.put_events(Entries=[{"EventBusName": bus, "Source": "p.test", "DetailType": "x", "Detail": json.dumps(d)}
                           for d in (yes, no)])
    got = [m["detail"] for m in drain(qu, wait=0.6)]
    report("OK" if got == [yes] else "DIFF", f"pattern {name}", f"delivered {got}")
    ev.remove_targets(Rule=rule, EventBusName=bus, Ids=["q"])
    ev.delete_rule(Name=rule, EventBusName=bus)

qu, qa = queue(uid("inputpath"))
ev.put_rule(Name="ip", EventBusName=bus, EventPattern=json.dumps({"source": ["ip.test"]}))
ev.put_targets(Rule="ip", EventBusName=bus, Targets=[
    {"Id": "q", "Arn": qa, "InputPath": "$.detail"}])
ev.put_events(Entries=[{"EventBusName": bus, "Source": "ip.test", "DetailType": "x", "Detail": '{"k": 1}'}])
got = drain(qu)
report("OK" if got == [{"k": 1}] else "DIFF", "target InputPath=$.detail body (AWS: the detail only)", got)
qu, qa = queue(uid("transformer"))
ev.put_rule(Name="it", EventBusName=bus, EventPattern=json.dumps({"source": ["it.test"]}))
ev.put_targets(Rule="it", EventBusName=bus, Targets=[
    {"Id": "q", "Arn": qa, "InputTransformer": {"InputPathsMap": {"k": "$.detail.k"},
                                                "InputTemplate": '{"key": <k>}'}}])
ev.put_events(Entries=[{"EventBusName": bus, "Source": "it.test", "DetailType": "x", "Detail": '{"k": 1}'}])
got = drain(qu)
report("OK" if got == [{"key": 1}] else "DIFF", "target InputTransformer body", got)

# FIFO target.
fifo = sqs.create_queue(QueueName=uid("reviews") + ".fifo",
                        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
farn = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
ev.put_rule(Name="fifo", EventBusName=bus, EventPattern=json.dumps({"source": ["fifo.test"]}))
attempt("PutTargets FIFO queue with SqsParameters.MessageGroupId",
        lambda: ev.put_targets(Rule="fifo", EventBusName=bus, Targets=[
            {"Id": "q", "Arn": farn, "SqsParameters": {"MessageGroupId": "g"}}]))
ev.put_events(Entries=[{"EventBusName": bus, "Source": "fifo.test", "DetailType": "x", "Detail": "{}"}])
report("OK" if len(drain(fifo)) == 1 else "DIFF", "FIFO queue target delivery", "checked")
