"""SageMaker on moto_server: the calls Steward's SageMaker integration makes (pipelines with a
CallbackStep, model packages) -- which are implemented, and what they return."""

import json
import time

from _common import attempt, client, report, uid

sm = client("sagemaker")
ev = client("events")
sqs = client("sqs")
ROLE = "arn:aws:iam::123456789012:role/steward-sagemaker"

# Pipeline with a CallbackStep (moto stores the definition; it does not run steps).
q_url = sqs.create_queue(QueueName=uid("sm-callback"))["QueueUrl"]
definition = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "ModelName", "Type": "String", "DefaultValue": "churn"}],
    "Steps": [{"Name": "RegisterWithSteward", "Type": "Callback",
               "Arguments": {"name": {"Get": "Parameters.ModelName"}},
               "SqsQueueUrl": q_url,
               "OutputParameters": [{"OutputName": "version", "OutputType": "String"}]}],
}
pname = uid("train-churn")
attempt("CreatePipeline (with a Callback step)",
        lambda: sm.create_pipeline(PipelineName=pname, PipelineDefinition=json.dumps(definition), RoleArn=ROLE))
ex = attempt("StartPipelineExecution",
             lambda: sm.start_pipeline_execution(
                 PipelineName=pname, PipelineParameters=[{"Name": "ModelName", "Value": "churn"}]))
exarn = ex.get("PipelineExecutionArn") if isinstance(ex, dict) else None
attempt("DescribePipelineExecution (status fields)",
        lambda: {k: v for k, v in sm.describe_pipeline_execution(PipelineExecutionArn=exarn).items()
                 if k in ("PipelineExecutionStatus", "FailureReason", "PipelineExecutionDisplayName")})
attempt("ListPipelineExecutionSteps",
        lambda: sm.list_pipeline_execution_steps(PipelineExecutionArn=exarn))
time.sleep(0.5)
msgs = sqs.receive_message(QueueUrl=q_url, MaxNumberOfMessages=10).get("Messages", [])
report("INFO", "CallbackStep message sent to its SQS queue by moto", f"{len(msgs)} messages (AWS: 1 with token)")
attempt("SendPipelineExecutionStepSuccess",
        lambda: sm.send_pipeline_execution_step_success(
            CallbackToken="0123456789abcdef", OutputParameters=[{"Name": "version", "Value": "3"}]))
attempt("SendPipelineExecutionStepFailure",
        lambda: sm.send_pipeline_execution_step_failure(CallbackToken="0123456789abcdef", FailureReason="invalid"))

# Model packages.
group = uid("churn")
attempt("CreateModelPackageGroup", lambda: sm.create_model_package_group(ModelPackageGroupName=group))
mp = attempt("CreateModelPackage (versioned, PendingManualApproval)",
             lambda: sm.create_model_package(
                 ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval",
                 ModelPackageDescription="churn v1",
                 CustomerMetadataProperties={"steward:registered": "false"},
                 InferenceSpecification={
                     "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1",
                                     "ModelDataUrl": "s3://models/churn/1/model.tar.gz"}],
                     "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}))
mparn = mp.get("ModelPackageArn") if isinstance(mp, dict) else None
report("INFO", "ModelPackageArn", mparn)
d = attempt("DescribeModelPackage",
            lambda: sm.describe_model_package(ModelPackageName=mparn))
if isinstance(d, dict):
    report("INFO", "DescribeModelPackage fields", {k: d.get(k) for k in (
        "ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelApprovalStatus",
        "ModelPackageStatus", "CustomerMetadataProperties", "CreationTime")})

# Approvals change events, as a rule on the default bus would see them.
eq = sqs.create_queue(QueueName=uid("sm-events"))["QueueUrl"]
earn = sqs.get_queue_attributes(QueueUrl=eq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
ev.put_rule(Name=uid("mp-state"), EventPattern=json.dumps(
    {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"]}))
for r in ev.list_rules()["Rules"]:
    if r["Name"].startswith("mp-state"):
        ev.put_targets(Rule=r["Name"], Targets=[{"Id": "q", "Arn": earn}])
attempt("UpdateModelPackage ModelApprovalStatus=Approved + ApprovalDescription",
        lambda: sm.update_model_package(ModelPackageArn=mparn, ModelApprovalStatus="Approved",
                                        ApprovalDescription="approved in Steward"))
d = sm.describe_model_package(ModelPackageName=mparn)
report("INFO", "after approval update", {k: d.get(k) for k in ("ModelApprovalStatus", "ApprovalDescription",
                                                                "CustomerMetadataProperties")})
attempt("UpdateModelPackage CustomerMetadataProperties only",
        lambda: sm.update_model_package(ModelPackageArn=mparn,
                                        CustomerMetadataProperties={"steward:registered": "true"}))
d = sm.describe_model_package(ModelPackageName=mparn)
got = {k: d.get(k) for k in ("ModelApprovalStatus", "ApprovalDescription", "CustomerMetadataProperties")}
report("OK" if got["ModelApprovalStatus"] == "Approved" else "DIFF",
       "after a metadata-only update (AWS: approval fields unchanged)", got)
time.sleep(0.5)
n = len(sqs.receive_message(QueueUrl=eq, MaxNumberOfMessages=10).get("Messages", []))
report("OK" if n else "DIFF", "'SageMaker Model Package State Change' event emitted on approval", f"{n} events")
attempt("ListModelPackages ModelPackageGroupName",
        lambda: [p["ModelPackageArn"] for p in sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]])
attempt("DescribeModelPackage unknown ARN (AWS: ValidationException)",
        lambda: sm.describe_model_package(ModelPackageName=mparn.rsplit("/", 1)[0] + "/999"),
        expect_error="ValidationException")
