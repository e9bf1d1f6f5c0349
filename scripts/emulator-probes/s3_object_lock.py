"""S3 Object Lock on moto_server: bucket creation with lock, default COMPLIANCE retention,
per-object retention, deletes refused while retained, GetObjectRetention, legal hold."""

import datetime as dt
import time

from _common import attempt, client, report, uid

s3 = client("s3")
raw = []


def keep_raw(response_dict, **_):
    if isinstance(response_dict, dict) and "status_code" in response_dict:
        body = response_dict.get("body", b"")
        raw.append((response_dict["status_code"], body[:80] if isinstance(body, bytes) else body))


s3.meta.events.register("before-parse.s3.GetObjectRetention", keep_raw)
now = dt.datetime.now(dt.timezone.utc)
later = now + dt.timedelta(days=1)

b = uid("steward-audit")
attempt("CreateBucket ObjectLockEnabledForBucket=True",
        lambda: s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True))
attempt("GetBucketVersioning after lock-enabled create (AWS: Enabled)",
        lambda: s3.get_bucket_versioning(Bucket=b), ok_if=lambda r: r.get("Status") == "Enabled")
attempt("GetObjectLockConfiguration before a rule (AWS: ObjectLockEnabled=Enabled, no Rule)",
        lambda: s3.get_object_lock_configuration(Bucket=b))
attempt("PutObjectLockConfiguration default COMPLIANCE 1 day",
        lambda: s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}}))
attempt("GetObjectLockConfiguration",
        lambda: s3.get_object_lock_configuration(Bucket=b),
        ok_if=lambda r: r["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE")

# 1. Object without explicit lock headers: AWS applies the bucket default retention.
r = s3.put_object(Bucket=b, Key="default.json", Body=b"{}")
v_default = r.get("VersionId")
report("INFO", "PutObject (no lock headers) VersionId", v_default)
attempt("HeadObject of default-retained object (AWS: ObjectLockMode=COMPLIANCE + RetainUntilDate)",
        lambda: {k: v for k, v in s3.head_object(Bucket=b, Key="default.json").items()
                 if k.startswith("ObjectLock")},
        ok_if=lambda r: r.get("ObjectLockMode") == "COMPLIANCE")
attempt("GetObjectRetention of default-retained object",
        lambda: s3.get_object_retention(Bucket=b, Key="default.json", VersionId=v_default),
        ok_if=lambda r: r["Retention"]["Mode"] == "COMPLIANCE")
attempt("DeleteObject VersionId on default-retained object (AWS: AccessDenied)",
        lambda: s3.delete_object(Bucket=b, Key="default.json", VersionId=v_default),
        expect_error="AccessDenied")

# 2. Explicit per-object COMPLIANCE retention.
r = attempt("PutObject ObjectLockMode=COMPLIANCE ObjectLockRetainUntilDate=+1d",
            lambda: s3.put_object(Bucket=b, Key="audit/1.json", Body=b'{"seq":1}',
                                  ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=later))
v1 = r.get("VersionId") if isinstance(r, dict) else None
attempt("GetObjectRetention", lambda: s3.get_object_retention(Bucket=b, Key="audit/1.json", VersionId=v1),
        ok_if=lambda r: r["Retention"]["Mode"] == "COMPLIANCE")
attempt("GetObjectRetention without VersionId",
        lambda: s3.get_object_retention(Bucket=b, Key="audit/1.json"))
report("INFO", "GetObjectRetention bodies: moto sends HTTP 200 + the object's own bytes (GET ?retention is "
       "served as GetObject); botocore turns that non-XML 200 into the 500 above",
       [list(map(str, r)) for r in raw])
attempt("GetObject returns lock fields",
        lambda: {k: v for k, v in s3.get_object(Bucket=b, Key="audit/1.json").items()
                 if k.startswith("ObjectLock")})
attempt("DeleteObject with VersionId while retained (AWS: AccessDenied)",
        lambda: s3.delete_object(Bucket=b, Key="audit/1.json", VersionId=v1),
        expect_error="AccessDenied")
attempt("DeleteObject with VersionId + BypassGovernanceRetention on COMPLIANCE (AWS: AccessDenied)",
        lambda: s3.delete_object(Bucket=b, Key="audit/1.json", VersionId=v1,
                                 BypassGovernanceRetention=True),
        expect_error="AccessDenied")
attempt("DeleteObjects (batch) with VersionId while retained (AWS: per-key Errors AccessDenied)",
        lambda: s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "audit/1.json", "VersionId": v1}]}),
        ok_if=lambda r: bool(r.get("Errors")) and not r.get("Deleted"))
attempt("Version still readable after refused deletes",
        lambda: s3.get_object(Bucket=b, Key="audit/1.json", VersionId=v1)["Body"].read())
attempt("DeleteObject without VersionId (AWS: allowed, adds a delete marker)",
        lambda: s3.delete_object(Bucket=b, Key="audit/1.json"),
        ok_if=lambda r: r.get("DeleteMarker") is True)
attempt("Locked version still readable by VersionId after delete marker",
        lambda: s3.get_object(Bucket=b, Key="audit/1.json", VersionId=v1)["Body"].read())
attempt("PutObjectRetention shortening COMPLIANCE (AWS: AccessDenied)",
        lambda: s3.put_object_retention(Bucket=b, Key="audit/1.json", VersionId=v1, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": now + dt.timedelta(seconds=5)}),
        expect_error="AccessDenied")
attempt("PutObjectRetention COMPLIANCE -> GOVERNANCE (AWS: AccessDenied)",
        lambda: s3.put_object_retention(Bucket=b, Key="audit/1.json", VersionId=v1, Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": later}),
        expect_error="AccessDenied")
attempt("PutObjectRetention extending COMPLIANCE (AWS: allowed)",
        lambda: s3.put_object_retention(Bucket=b, Key="audit/1.json", VersionId=v1, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": later + dt.timedelta(days=1)}))
attempt("GetObjectRetention after the retention calls",
        lambda: s3.get_object_retention(Bucket=b, Key="audit/1.json", VersionId=v1))

# 3. Retention that expires: is time compared at all?
r = s3.put_object(Bucket=b, Key="short.json", Body=b"{}", ObjectLockMode="COMPLIANCE",
                  ObjectLockRetainUntilDate=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2))
time.sleep(3)
attempt("DeleteObject VersionId after RetainUntilDate passed (AWS: allowed)",
        lambda: s3.delete_object(Bucket=b, Key="short.json", VersionId=r["VersionId"]))

# 4. GOVERNANCE with bypass, legal hold.
r = s3.put_object(Bucket=b, Key="gov.json", Body=b"{}", ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=later)
attempt("DeleteObject VersionId GOVERNANCE without bypass (AWS: AccessDenied)",
        lambda: s3.delete_object(Bucket=b, Key="gov.json", VersionId=r["VersionId"]),
        expect_error="AccessDenied")
attempt("DeleteObject VersionId GOVERNANCE with BypassGovernanceRetention (AWS: allowed)",
        lambda: s3.delete_object(Bucket=b, Key="gov.json", VersionId=r["VersionId"],
                                 BypassGovernanceRetention=True))
attempt("PutObjectLockConfiguration on a bucket that holds objects (AWS: allowed)",
        lambda: s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2}}}))
attempt("HeadObject VersionId: the way to read retention that works on both",
        lambda: {k: v for k, v in s3.head_object(Bucket=b, Key="audit/1.json", VersionId=v1).items()
                 if k.startswith("ObjectLock")},
        ok_if=lambda r: r.get("ObjectLockMode") == "COMPLIANCE")
hb = uid("steward-hold")
s3.create_bucket(Bucket=hb, ObjectLockEnabledForBucket=True)
r = s3.put_object(Bucket=hb, Key="hold.json", Body=b"{}", ObjectLockLegalHoldStatus="ON")
attempt("GetObjectLegalHold", lambda: s3.get_object_legal_hold(Bucket=hb, Key="hold.json", VersionId=r["VersionId"]))
attempt("DeleteObject VersionId under legal hold (AWS: AccessDenied)",
        lambda: s3.delete_object(Bucket=hb, Key="hold.json", VersionId=r["VersionId"]),
        expect_error="AccessDenied")
attempt("DeleteBucket with retained objects (AWS: BucketNotEmpty)",
        lambda: s3.delete_bucket(Bucket=b), expect_error="BucketNotEmpty")

# 5. Lock headers on a bucket created without Object Lock.
plain = uid("steward-plain")
s3.create_bucket(Bucket=plain)
attempt("PutObject with lock headers on bucket without Object Lock (AWS: InvalidRequest)",
        lambda: s3.put_object(Bucket=plain, Key="x", Body=b"{}", ObjectLockMode="COMPLIANCE",
                              ObjectLockRetainUntilDate=later),
        expect_error="InvalidRequest")
attempt("GetObjectLockConfiguration on bucket without Object Lock "
        "(AWS: ObjectLockConfigurationNotFoundError)",
        lambda: s3.get_object_lock_configuration(Bucket=plain),
        expect_error="ObjectLockConfigurationNotFoundError")
