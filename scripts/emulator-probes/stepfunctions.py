"""Step Functions on moto_server with execute_state_machine on (scripts/emulators start sets it):
events:putEvents.waitForTaskToken inside a Map, SendTaskSuccess/SendTaskFailure, TimeoutSeconds,
HeartbeatSeconds, Catch, plus a few quirks (execution names, request-response putEvents)."""

import json
import time

from _common import attempt, client, err, report, uid

sfn = client("stepfunctions")
ev = client("events")
sqs = client("sqs")
ROLE = "arn:aws:iam::123456789012:role/steward-sfn"

# ReviewRequested events -> SQS, as in the design (the queue a Lambda drains).
q_url = sqs.create_queue(QueueName=uid("review-requests"))["QueueUrl"]
q_arn = sqs.get_queue_attributes(QueueUrl=q_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
rule = uid("review-requested")
ev.put_rule(Name=rule, EventPattern=json.dumps({"source": ["steward.governance"], "detail-type": ["ReviewRequested"]}))
ev.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": q_arn}])


def review_task(timeout=30, heartbeat=None, entries=None):
    t = {
        "Type": "Task",
        "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
        "Parameters": {"Entries": entries or [{
            "Source": "steward.governance", "DetailType": "ReviewRequested",
            "Detail": {"review.$": "$", "token.$": "$$.Task.Token"}}]},
        "TimeoutSeconds": timeout,
        "End": True,
    }
    if heartbeat:
        t["HeartbeatSeconds"] = heartbeat
    return t


def approval(task):
    return {
        "StartAt": "Reviews",
        "States": {
            "Reviews": {
                "Type": "Map", "ItemsPath": "$.reviews", "ResultPath": "$.decisions",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"},
                                  "StartAt": "RequestReview", "States": {"RequestReview": task}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Rejected"}],
                "Next": "Approved",
            },
            "Approved": {"Type": "Pass", "Result": "approved", "ResultPath": "$.outcome", "End": True},
            "Rejected": {"Type": "Pass", "Result": "rejected", "ResultPath": "$.outcome", "End": True},
        },
    }


def machine(defn, name="approval"):
    return sfn.create_state_machine(name=uid(name), definition=json.dumps(defn), roleArn=ROLE)["stateMachineArn"]


def start(arn, inp):
    return sfn.start_execution(stateMachineArn=arn, name=uid("x"), input=json.dumps(inp))["executionArn"]


def wait_done(ex, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.1)
    return d


def tokens(n, timeout=10):
    out, deadline = [], time.time() + timeout
    while len(out) < n and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=q_url, MaxNumberOfMessages=10).get("Messages", []):
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=q_url, ReceiptHandle=m["ReceiptHandle"])
        time.sleep(0.05)
    return out


def summary(d):
    return {k: d.get(k) for k in ("status", "output", "error", "cause") if d.get(k) is not None}


sm = machine(approval(review_task()))
report("OK", "CreateStateMachine with Map + events:putEvents.waitForTaskToken + Catch", sm)

# A. Two reviews, both approved.
ex = start(sm, {"name": "churn", "version": 3, "reviews": [{"reviewer": "alice"}, {"reviewer": "bob"}]})
t0 = time.time()
evs = tokens(2)
report("OK" if len(evs) == 2 else "DIFF", "A: ReviewRequested events reached SQS (one per Map item)",
       f"{len(evs)} in {time.time() - t0:.2f}s")
if evs:
    report("INFO", "A: event as received (resources get the state machine + execution ARN appended)",
           {**evs[0], "detail": {**evs[0]["detail"], "token": evs[0]["detail"]["token"][:24] + "..."}})
for e in evs:
    attempt(f"A: SendTaskSuccess for {e['detail']['review']['reviewer']}",
            lambda: sfn.send_task_success(taskToken=e["detail"]["token"],
                                          output=json.dumps({"decision": "approve", "by": e["detail"]["review"]["reviewer"]})))
t0 = time.time()
d = wait_done(ex)
report("OK" if d["status"] == "SUCCEEDED" and "approved" in d.get("output", "") else "DIFF",
       "A: execution result", f"{summary(d)} ({time.time() - t0:.2f}s after last callback)")
if evs:
    attempt("A: SendTaskSuccess again with a used token (AWS: TaskTimedOut or InvalidToken)",
            lambda: sfn.send_task_success(taskToken=evs[0]["detail"]["token"], output="{}"),
            expect_error="TaskTimedOut|InvalidToken")
attempt("SendTaskSuccess with a made-up token (AWS: InvalidToken)",
        lambda: sfn.send_task_success(taskToken="nope", output="{}"), expect_error="InvalidToken")

# B. One rejection via SendTaskFailure -> Catch.
ex = start(sm, {"reviews": [{"reviewer": "alice"}, {"reviewer": "bob"}]})
evs = tokens(2)
attempt("B: SendTaskFailure error=ReviewRejected cause=...",
        lambda: sfn.send_task_failure(taskToken=evs[0]["detail"]["token"], error="ReviewRejected",
                                      cause="risk too high"))
d = wait_done(ex)
out = json.loads(d.get("output") or "{}")
report("OK" if d["status"] == "SUCCEEDED" and out.get("outcome") == "rejected" else "DIFF",
       "B: Catch routed the failure to Rejected", summary(d))
report("OK" if out.get("error", {}).get("Cause") == "risk too high" else "DIFF",
       "B: caught error object (AWS: {Error: ReviewRejected, Cause: 'risk too high'})", out.get("error"))
hist = sfn.get_execution_history(executionArn=ex)["events"]
tf = [e for e in hist if e["type"] == "TaskFailed"]
report("INFO", "B: TaskFailed history event", tf[0].get("taskFailedEventDetails") if tf else "none")
attempt("B: SendTaskSuccess for the other branch's token after the Map failed "
        "(AWS: TaskTimedOut / TaskDoesNotExist / InvalidToken)",
        lambda: sfn.send_task_success(taskToken=evs[1]["detail"]["token"], output="{}"),
        expect_error="TaskTimedOut|TaskDoesNotExist|InvalidToken")

# C. TimeoutSeconds without an answer.
sm_to = machine(approval(review_task(timeout=2)), "approval-timeout")
t0 = time.time()
ex = start(sm_to, {"reviews": [{"reviewer": "alice"}]})
tokens(1)
d = wait_done(ex)
out = json.loads(d.get("output") or "{}")
report("OK" if out.get("error", {}).get("Error") == "States.Timeout" else "DIFF",
       "C: TimeoutSeconds=2, no callback -> caught error", f"{out.get('error')} after {time.time() - t0:.1f}s")

# C2. Where the timeout is caught matters: States.* errors leaving a Map iteration / Parallel branch.
def timeout_case(what, defn, inp, want):
    d = wait_done(start(machine(defn, "timeout-case"), inp))
    got = json.loads(d["output"]).get("e") if d.get("output") else {"status": d["status"], "error": d.get("error"),
                                                                      "cause": d.get("cause")}
    report("OK" if isinstance(got, dict) and got.get("Error") == want else "DIFF", f"C2: {what} (AWS: {want})", got)


inner = review_task(timeout=1)
timeout_case("Catch [States.Timeout] on the Task inside the Map ItemProcessor",
             {"StartAt": "M", "States": {"M": {
                 "Type": "Map", "ItemsPath": "$.reviews", "ResultPath": "$.d",
                 "ItemProcessor": {"StartAt": "T", "States": {
                     "T": {**inner, "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.e", "Next": "C"}]},
                     "C": {"Type": "Pass", "End": True}}},
                 "OutputPath": "$.d[0]", "End": True}}},
             {"reviews": [{"reviewer": "alice"}]}, "States.Timeout")
timeout_case("Catch [States.Timeout] on the Map state",
             {"StartAt": "M", "States": {"M": {
                 "Type": "Map", "ItemsPath": "$.reviews", "ResultPath": "$.d",
                 "ItemProcessor": {"StartAt": "T", "States": {"T": inner}},
                 "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.e", "Next": "C"}], "End": True},
                 "C": {"Type": "Pass", "End": True}}},
             {"reviews": [{"reviewer": "alice"}]}, "States.Timeout")
timeout_case("Catch [States.Timeout] on a Parallel state",
             {"StartAt": "P", "States": {"P": {
                 "Type": "Parallel", "Branches": [{"StartAt": "T", "States": {"T": inner}}],
                 "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.e", "Next": "C"}], "End": True},
                 "C": {"Type": "Pass", "End": True}}},
             {"reviewer": "alice"}, "States.Timeout")
timeout_case("Catch [States.Timeout] on a top-level Task",
             {"StartAt": "T", "States": {
                 "T": {**{k: v for k, v in inner.items() if k != "End"}, "Next": "OK",
                       "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.e", "Next": "C"}]},
                 "OK": {"Type": "Succeed"}, "C": {"Type": "Pass", "End": True}}},
             {"reviewer": "alice"}, "States.Timeout")
timeout_case("Custom error from SendTaskFailure... here a Fail state inside the Map, Catch on the Map",
             {"StartAt": "M", "States": {"M": {
                 "Type": "Map", "ItemsPath": "$.reviews", "ResultPath": "$.d",
                 "ItemProcessor": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ReviewTimedOut",
                                                                    "Cause": "no decision"}}},
                 "Catch": [{"ErrorEquals": ["ReviewTimedOut"], "ResultPath": "$.e", "Next": "C"}], "End": True},
                 "C": {"Type": "Pass", "End": True}}},
             {"reviews": [{"reviewer": "alice"}]}, "ReviewTimedOut")
sqs.purge_queue(QueueUrl=q_url)

# D. HeartbeatSeconds expiry (AWS: States.HeartbeatTimeout) and SendTaskHeartbeat.
sm_hb = machine(approval(review_task(timeout=30, heartbeat=2)), "approval-heartbeat")
t0 = time.time()
ex = start(sm_hb, {"reviews": [{"reviewer": "alice"}]})
tokens(1)
d = wait_done(ex)
out = json.loads(d.get("output") or "{}")
report("OK" if out.get("error", {}).get("Error") == "States.HeartbeatTimeout" else "DIFF",
       "D: HeartbeatSeconds=2 expiry, AWS error States.HeartbeatTimeout", f"{out.get('error')} after {time.time() - t0:.1f}s")
ex = start(sm_hb, {"reviews": [{"reviewer": "alice"}]})
tok = tokens(1)[0]["detail"]["token"]
for _ in range(3):
    time.sleep(1)
    attempt("D: SendTaskHeartbeat", lambda: sfn.send_task_heartbeat(taskToken=tok))
attempt("D: SendTaskSuccess after 3 s of heartbeats (HeartbeatSeconds=2)",
        lambda: sfn.send_task_success(taskToken=tok, output='{"decision": "approve"}'))
report("INFO", "D: result with heartbeats", summary(wait_done(ex)))

# E. PutEvents entry failing inside the task -> EventBridge.FailedEntry.
sm_fe = machine(approval(review_task(entries=[{"Source": "steward.governance", "DetailType": "ReviewRequested"}])),
                "approval-failedentry")
d = wait_done(start(sm_fe, {"reviews": [{"reviewer": "alice"}]}))
out = json.loads(d.get("output") or "{}")
report("OK" if out.get("error", {}).get("Error") == "EventBridge.FailedEntry" else "DIFF",
       "E: PutEvents entry without Detail -> caught error (AWS: EventBridge.FailedEntry)", out.get("error"))

# F. StopExecution while waiting for a token.
ex = start(sm, {"reviews": [{"reviewer": "alice"}]})
tok = tokens(1)[0]["detail"]["token"]
attempt("F: StopExecution while waiting", lambda: sfn.stop_execution(executionArn=ex, error="Retired", cause="x"))
report("INFO", "F: status after StopExecution", summary(wait_done(ex, timeout=5)))
attempt("F: SendTaskSuccess after StopExecution (AWS: TaskTimedOut/InvalidToken)",
        lambda: sfn.send_task_success(taskToken=tok, output="{}"), expect_error="TaskTimedOut|InvalidToken|TaskDoesNotExist")
report("INFO", "F: status after that SendTaskSuccess", summary(wait_done(ex, timeout=5)))

# G. Execution names.
pas = machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, "pass")
a = attempt("G: StartExecution without name",
            lambda: sfn.start_execution(stateMachineArn=pas, input='{"a": 1}'))
b = attempt("G: StartExecution without name again, other input (AWS: new execution, UUID name)",
            lambda: sfn.start_execution(stateMachineArn=pas, input='{"a": 2}'),
            ok_if=lambda r: isinstance(a, dict) and r["executionArn"] != a["executionArn"])
n = uid("same")
sfn.start_execution(stateMachineArn=pas, name=n, input='{"a": 1}')
attempt("G: same name, different input (AWS: ExecutionAlreadyExists)",
        lambda: sfn.start_execution(stateMachineArn=pas, name=n, input='{"a": 2}'),
        expect_error="ExecutionAlreadyExists")

# H. Other integrations the design may want.
pe = machine({"StartAt": "T", "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
    "Parameters": {"Entries": [{"Source": "steward.governance", "DetailType": "ModelRetired", "Detail": {"a": 1}}]},
    "End": True}}}, "putevents-plain")
report("INFO", "H: plain arn:aws:states:::events:putEvents (request-response)",
       summary(wait_done(start(pe, {}))))
sq = machine({"StartAt": "T", "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
    "Parameters": {"QueueUrl": q_url, "MessageBody": {"token.$": "$$.Task.Token"}},
    "TimeoutSeconds": 10, "End": True}}}, "sqs-token")
ex = start(sq, {})
time.sleep(0.5)
msgs = sqs.receive_message(QueueUrl=q_url, MaxNumberOfMessages=1).get("Messages", [])
if msgs:
    sfn.send_task_success(taskToken=json.loads(msgs[0]["Body"])["token"], output='{"ok": true}')
    sqs.delete_message(QueueUrl=q_url, ReceiptHandle=msgs[0]["ReceiptHandle"])
report("INFO", "H: arn:aws:states:::sqs:sendMessage.waitForTaskToken", summary(wait_done(ex)))
ch = machine({"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
          "Default": "Small"},
    "Big": {"Type": "Pass", "Parameters": {"msg.$": "States.Format('big {}', $.n)"}, "End": True},
    "Small": {"Type": "Fail", "Error": "TooSmall", "Cause": "n <= 1"}}}, "choice")
report("INFO", "H: Choice + States.Format", summary(wait_done(start(ch, {"n": 2}))))
report("INFO", "H: Fail state", summary(wait_done(start(ch, {"n": 0}))))
try:
    machine({"StartAt": "X", "States": {"X": {"Type": "Nope", "End": True}}}, "invalid")
    report("DIFF", "H: CreateStateMachine with an invalid definition (AWS: InvalidDefinition)", "accepted")
except Exception as e:  # noqa: BLE001
    report("OK", "H: CreateStateMachine with an invalid definition (AWS: InvalidDefinition)", err(e))
