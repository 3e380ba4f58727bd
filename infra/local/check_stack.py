#!/usr/bin/env python3
"""Deploys infra/template.yaml, translated from SAM exactly as for a real deploy, as a TEST and a
LIVE stack into an in-process AWS emulator (moto's mock_aws: no server, no port), then checks
what was created against what the platform needs. Exits non-zero with one line per problem.

What it checks, per stack:
- the edge queue is FIFO, its redrive policy points at a FIFO dead-letter queue, visibility is at
  least 6x the processor's timeout (AWS guidance for SQS event sources);
- every table of README "State in DynamoDB" exists with its keys and indexes, on demand;
- the event source mapping feeds the edge queue to process-events with ReportBatchItemFailures;
- the two schedules exist; the ops API has a function URL;
- each function has its own role, and that role reaches only the tables it needs, the operations
  topic and (process-events only) the edge queue and, to send only, its dead-letter queue (ops-api:
  read the dead-letter queue only); no role allows a wildcard resource for data;
- the Worker's IAM user may only sqs:SendMessage, on the edge queue only;
- the alarms exist and notify the operations topic (dead-letter depth, function errors, alerts
  near their deadline);
- no secret value is in the template nor in any function's configuration: no environment holds a
  dynamic reference (`{{resolve:...}}`, which CloudFormation would resolve into plain text) or a
  key; the functions get the API key secret's name (CBS_API_KEY_SECRET_ID) and may only
  secretsmanager:GetSecretValue that one secret;
- TEST and LIVE share no physical resource.

moto cannot run functions or resolve every feature: AWS::Lambda::Url and AWS::Events::Rule are
checked in the translated template, the rest in the deployed stack.
"""

import ast
import io
import json
import os
import re
import sys
import zipfile

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import sam  # noqa: E402

REGION = os.environ["AWS_DEFAULT_REGION"]

# README "State in DynamoDB": table -> (keys, {index: keys})
TABLES = {
    "events": (["event_id"], {}),
    "archive": (["event_id", "delivery_id"], {"received-index": ["received_day", "received_at"]}),
    "alerts": (
        ["alert_id"],
        {
            "deadline-index": ["action_queue", "action_required_deadline"],
            "organisation-index": ["organisation_id", "alert_received_at"],
        },
    ),
    "enrolments": (["enrolment_id"], {"organisation-index": ["organisation_id", "enrolment_id"]}),
    "orders": (
        ["organisation_id", "reference_id"],
        {"pending-index": ["pending_organisation_id", "queued_at"]},
    ),
    "customers": (["customer_id"], {"organisation-index": ["organisation_id"]}),
    "operators": (["key_hash"], {}),
    "cursors": (["cursor_id"], {}),
    "run-state": (["name"], {}),
    "transactions": (["lookup", "entry"], {}),
    "insights": (["pk", "sk"], {}),
}

# Which tables each function may touch (least privilege), and whether it may write them.
FUNCTION_TABLES = {
    "process-events": {
        "archive": "rw",
        "events": "rw",
        "alerts": "rw",
        "enrolments": "rw",
        "customers": "r",
        "transactions": "rw",
        "insights": "rw",
    },
    "order-upload": {"orders": "rw", "customers": "r", "run-state": "rw", "insights": "rw"},
    "deadline-sweep": {
        "alerts": "rw",
        "enrolments": "rw",
        "cursors": "rw",
        "customers": "r",
        "run-state": "rw",
        "insights": "rw",
    },
    "ops-api": {
        "alerts": "rw",
        "enrolments": "rw",
        "orders": "rw",
        "transactions": "rw",
        "customers": "rw",
        "operators": "r",
        "events": "rw",
        "archive": "r",
        "insights": "rw",
    },
}
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}

problems = []


def check(ok, message):
    if not ok:
        problems.append(message)
    return ok


def as_list(v):
    return v if isinstance(v, list) else [v]


def upload_placeholder_code():
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=sam.PLACEHOLDER_CODE_BUCKET,
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    s3.put_object(Bucket=sam.PLACEHOLDER_CODE_BUCKET, Key=sam.PLACEHOLDER_CODE_KEY, Body=buf.getvalue())


def check_template_text():
    raw = sam.TEMPLATE.read_text(encoding="utf-8")
    for pattern in (r"cbs_(test|live)_[A-Za-z0-9]{8,}", r"whsec_[A-Za-z0-9]{8,}", r"AKIA[0-9A-Z]{16}"):
        check(not re.search(pattern, raw), f"template contains what looks like a secret ({pattern})")
    template = sam.load_template()
    global_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    check("{{resolve:" not in json.dumps(global_env), "Globals: a function environment holds a dynamic reference")
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        env = res["Properties"].get("Environment", {}).get("Variables", {})
        # A dynamic reference in an environment is resolved at deploy time into plain text that
        # anyone with lambda:GetFunctionConfiguration reads.
        check(
            "{{resolve:" not in json.dumps(env),
            f"{name}: its environment holds a dynamic reference (resolved into plain text at deploy)",
        )
        check("CBS_API_KEY" not in env, f"{name}: CBS_API_KEY is set; the key must be read at run time")
        check(
            env.get("CBS_API_KEY_SECRET_ID") == {"Ref": "CbsApiKeySecretName"},
            f"{name}: CBS_API_KEY_SECRET_ID must be the secret's name (Ref CbsApiKeySecretName), got {env.get('CBS_API_KEY_SECRET_ID')}",
        )


def check_alarms(mode, cfn):
    """Alarms, all notifying the operations topic: dead-letter depth, each function's errors,
    alerts near their deadline, the sweep's own errors."""
    alarms = {n: r["Properties"] for n, r in cfn["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    for want in [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("ChargebackPlatform", "AlertDeadlineWarnings"),
        ("ChargebackPlatform", "DeadlineSweepErrors"),
    ]:
        check(want in metrics, f"{mode}: no alarm on {want[0]} {want[1]}")
    functions = {n for n, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    watched = {
        d["Value"].get("Ref")
        for a in alarms.values()
        if a["MetricName"] == "Errors"
        for d in a.get("Dimensions", [])
        if d["Name"] == "FunctionName" and isinstance(d["Value"], dict)
    }
    check(watched == functions, f"{mode}: function-error alarms watch {sorted(watched)}, want {sorted(functions)}")
    for name, a in alarms.items():
        check({"Ref": "OperationsTopic"} in a.get("AlarmActions", []), f"{mode}: {name} does not notify the operations topic")
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible":
            dims = {d["Name"]: d["Value"] for d in a["Dimensions"]}
            check(
                dims.get("QueueName") == {"Fn::GetAtt": ["EdgeDeadLetterQueue", "QueueName"]},
                f"{mode}: the depth alarm watches {dims}, not the dead-letter queue",
            )


def check_worker_user(mode, cfn):
    """The Worker's IAM user may only sqs:SendMessage, on the edge queue only."""
    users = [r["Properties"] for r in cfn["Resources"].values() if r["Type"] == "AWS::IAM::User"]
    check(len(users) == 1, f"{mode}: expected one IAM user (the Worker's), got {len(users)}")
    for user in users:
        check(not user.get("ManagedPolicyArns"), f"{mode}: the Worker user has managed policies")
        statements = [st for p in user.get("Policies", []) for st in as_list(p["PolicyDocument"]["Statement"])]
        check(len(statements) == 1, f"{mode}: the Worker user should have one statement, has {len(statements)}")
        for st in statements:
            check(st.get("Effect") == "Allow", f"{mode}: Worker statement effect {st.get('Effect')}")
            check(as_list(st["Action"]) == ["sqs:SendMessage"], f"{mode}: Worker user actions {st['Action']}")
            check(
                as_list(st["Resource"]) == [{"Fn::GetAtt": ["EdgeQueue", "Arn"]}],
                f"{mode}: Worker user resources {st['Resource']}",
            )


def check_translated(mode, cfn):
    check_alarms(mode, cfn)
    check_worker_user(mode, cfn)
    res = cfn["Resources"]
    for name, r in res.items():
        if r["Type"] == "AWS::Lambda::Function":
            check(r["Properties"].get("Architectures") == ["arm64"], f"{mode}: {name} is not arm64")
    rules = [r for r in res.values() if r["Type"] == "AWS::Events::Rule"]
    check(len(rules) == 2, f"{mode}: expected 2 schedules (order-upload, deadline-sweep), got {len(rules)}")
    urls = [r for r in res.values() if r["Type"] == "AWS::Lambda::Url"]
    check(len(urls) == 1, f"{mode}: expected the ops API function URL")
    roles = [r for r in res.values() if r["Type"] == "AWS::IAM::Role"]
    for role in roles:
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            check(
                "AWSLambdaSQSQueueExecutionRole" not in json.dumps(arn),
                f"{mode}: a role has AWSLambdaSQSQueueExecutionRole (every queue in the account)",
            )


# The key's value in the emulator: it must appear in no function's configuration.
EMULATOR_API_KEY = {"TEST": "cbs_test_emulator", "LIVE": "cbs_live_emulator"}


def deploy(mode, prefix):
    params = sam.stack_parameters(mode, prefix)
    cfn_template = sam.translate(parameters=params)
    check_translated(mode, cfn_template)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    # The deploy resolves the API key from Secrets Manager by name; an emulator-only value here.
    secrets.create_secret(Name=params["CbsApiKeySecretName"], SecretString=EMULATOR_API_KEY[mode])
    declared = cfn_template.get("Parameters", {})
    resources = sam.create_stack(
        None, prefix, json.dumps(for_moto(cfn_template)), {k: v for k, v in params.items() if k in declared}
    )
    return cfn_template, resources


# moto's CloudFormation has no AWS::Lambda::Url nor AWS::CloudWatch::Alarm: those are checked in
# the translated template instead (the outputs refer to the URL).
MOTO_UNSUPPORTED = {"AWS::Lambda::Url", "AWS::CloudWatch::Alarm"}


def for_moto(cfn_template):
    out = dict(cfn_template)
    out["Resources"] = {n: r for n, r in cfn_template["Resources"].items() if r["Type"] not in MOTO_UNSUPPORTED}
    out.pop("Outputs", None)
    return out


def physical(resources, logical):
    return resources[logical]["PhysicalResourceId"]


def check_stack(mode, prefix, template, resources):
    sqs = boto3.client("sqs", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    lam = boto3.client("lambda", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    cw = boto3.client("cloudwatch", region_name=REGION)

    # --- queues
    edge_url = sqs.get_queue_url(QueueName=f"{prefix}-edge.fifo")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{prefix}-edge-dlq.fifo")["QueueUrl"]
    edge = sqs.get_queue_attributes(QueueUrl=edge_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    check(edge.get("FifoQueue") == "true", f"{mode}: edge queue is not FIFO")
    check(dlq.get("FifoQueue") == "true", f"{mode}: dead-letter queue is not FIFO")
    # High-throughput FIFO (docs/capacity.md): limits per message group, not per queue.
    for name, attrs in (("edge queue", edge), ("dead-letter queue", dlq)):
        check(
            attrs.get("DeduplicationScope") == "messageGroup"
            and attrs.get("FifoThroughputLimit") == "perMessageGroupId",
            f"{mode}: {name} is not high-throughput FIFO ({attrs.get('DeduplicationScope')}, {attrs.get('FifoThroughputLimit')})",
        )
    redrive = json.loads(edge.get("RedrivePolicy", "{}"))
    check(redrive.get("deadLetterTargetArn") == dlq["QueueArn"], f"{mode}: edge queue does not redrive to its DLQ")
    check(int(redrive.get("maxReceiveCount", 0)) >= 1, f"{mode}: no maxReceiveCount")
    fn_timeout = int(template["Parameters"]["ProcessorTimeoutSeconds"]["Default"])
    check(
        int(edge["VisibilityTimeout"]) >= 6 * fn_timeout,
        f"{mode}: visibility {edge['VisibilityTimeout']} s < 6 x processor timeout {fn_timeout} s",
    )

    # --- tables
    for table, (keys, indexes) in TABLES.items():
        name = f"{prefix}-{table}"
        try:
            desc = ddb.describe_table(TableName=name)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            check(False, f"{mode}: table {name} missing")
            continue
        check([k["AttributeName"] for k in desc["KeySchema"]] == keys, f"{mode}: {name} keys {desc['KeySchema']}")
        check(
            desc.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST",
            f"{mode}: {name} is not on demand",
        )
        got = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in desc.get("GlobalSecondaryIndexes", [])}
        check(got == indexes, f"{mode}: {name} indexes {got}, want {indexes}")

    # --- event source mapping
    fn_names = {f: f"{prefix}-{f}" for f in FUNCTION_TABLES}
    mappings = lam.list_event_source_mappings(FunctionName=fn_names["process-events"])["EventSourceMappings"]
    check(len(mappings) == 1, f"{mode}: process-events should have one event source mapping, has {len(mappings)}")
    for m in mappings:
        check(m["EventSourceArn"] == edge["QueueArn"], f"{mode}: mapping source {m['EventSourceArn']}")
        check("ReportBatchItemFailures" in m.get("FunctionResponseTypes", []), f"{mode}: mapping without partial batch responses")
        check(m.get("BatchSize", 0) <= 10, f"{mode}: FIFO batch size over 10")

    # --- one role per function, scoped to its tables
    role_arns = {}
    secret_name = f"cbs/{mode.lower()}/api-key"
    for f, fname in fn_names.items():
        conf = lam.get_function(FunctionName=fname)["Configuration"]
        role_arns[f] = conf["Role"]
        env = conf.get("Environment", {}).get("Variables", {})
        # What a reader of the function's configuration sees: the secret's name, never its value.
        check(env.get("CBS_API_KEY_SECRET_ID") == secret_name, f"{mode}: {fname} CBS_API_KEY_SECRET_ID={env.get('CBS_API_KEY_SECRET_ID')}")
        for k, v in env.items():
            check(
                EMULATOR_API_KEY[mode] not in str(v) and not re.search(r"cbs_(test|live)_", str(v)),
                f"{mode}: {fname} environment {k} holds the API key in plain text",
            )
        check(env.get("STACK_MODE") == mode, f"{mode}: {fname} STACK_MODE={env.get('STACK_MODE')}")
        check(env.get("TABLE_PREFIX") == prefix, f"{mode}: {fname} TABLE_PREFIX={env.get('TABLE_PREFIX')}")
    check(len(set(role_arns.values())) == len(role_arns), f"{mode}: functions share a role")
    for f, arn in role_arns.items():
        statements = role_statements(iam, arn.rsplit("/", 1)[-1])
        check(
            any(
                "secretsmanager:GetSecretValue" in as_list(st.get("Action", []))
                and any(f":secret:{secret_name}-" in str(r) for r in as_list(st.get("Resource", [])))
                for st in statements
            ),
            f"{mode}: {f} cannot read the API key secret {secret_name}",
        )
        allowed = FUNCTION_TABLES[f]
        for st in statements:
            actions = set(as_list(st.get("Action", [])))
            res = [str(r) for r in as_list(st.get("Resource", []))]
            if any(a.startswith("dynamodb:") for a in actions):
                for r in res:
                    table = table_of(r, prefix)
                    check(table is not None, f"{mode}: {f} has DynamoDB access beyond its tables: {r}")
                    if table is None:
                        continue
                    check(table in allowed, f"{mode}: {f} may reach table {table}")
                    if actions & WRITE_ACTIONS:
                        check(allowed.get(table) == "rw", f"{mode}: {f} may write {table}, which it only reads")
            if any(a.startswith("sqs:") for a in actions) and f == "ops-api":
                # The page reads the DLQ's depth and reasons: nothing else, nowhere else.
                check(set(res) == {dlq["QueueArn"]}, f"{mode}: ops-api SQS access beyond the DLQ: {res}")
                check(
                    actions <= {"sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"},
                    f"{mode}: ops-api may do more than read the DLQ: {sorted(actions)}",
                )
            elif any(a.startswith("sqs:") for a in actions):
                check(f == "process-events", f"{mode}: {f} has SQS access")
                # The edge queue (poll, visibility, delete) and its dead-letter queue, where
                # process-events sends poison messages itself: SendMessage only there.
                check(
                    set(res) <= {edge["QueueArn"], dlq["QueueArn"]},
                    f"{mode}: {f} SQS access beyond the edge queue and its DLQ: {res}",
                )
                if dlq["QueueArn"] in res:
                    check(
                        actions <= {"sqs:SendMessage", "sqs:SendMessage*"},
                        f"{mode}: {f} may do more than send to the dead-letter queue: {sorted(actions)}",
                    )
            if any(a.startswith("secretsmanager:") or a == "*" for a in actions):
                check(
                    actions == {"secretsmanager:GetSecretValue"},
                    f"{mode}: {f} has {sorted(actions)}; only secretsmanager:GetSecretValue",
                )
                for r in res:
                    check(
                        f":secret:{secret_name}-" in r or f":secret:${{CbsApiKeySecretName}}-" in r,
                        f"{mode}: {f} may read secrets beyond the API key: {r}",
                    )

    # --- the Worker's identity exists (its policy is checked in the translated template: moto's
    # CloudFormation does not attach a user's inline policies)
    user = physical(resources, "EdgeWorkerUser")
    check(iam.get_user(UserName=user)["User"]["UserName"] == user, f"{mode}: no Worker user")
    check(iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == [], f"{mode}: Worker user has managed policies")

    topic_arn = physical(resources, "OperationsTopic")
    return {
        "queue": edge["QueueArn"],
        "tables": [f"{prefix}-{t}" for t in TABLES],
        "roles": sorted(role_arns.values()),
        "user": user,
        "topic": topic_arn,
    }


def role_statements(iam, role_name):
    statements = []
    for n in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        doc = document(iam.get_role_policy(RoleName=role_name, PolicyName=n)["PolicyDocument"])
        statements += as_list(doc["Statement"])
    return statements


def document(doc):
    """A policy document; moto returns the ones CloudFormation created as a Python repr."""
    if isinstance(doc, dict):
        return doc
    try:
        return json.loads(doc)
    except json.JSONDecodeError:
        return ast.literal_eval(doc)


def table_of(resource_arn, prefix):
    m = re.match(r"arn:aws:dynamodb:[^:]*:[^:]*:table/([^/]+)(/index/.*)?$", resource_arn)
    if not m or not m.group(1).startswith(prefix + "-"):
        return None
    return m.group(1)[len(prefix) + 1 :]


@mock_aws
def main():
    check_template_text()
    upload_placeholder_code()
    template = sam.load_template()
    seen = {}
    for mode, prefix in (("TEST", "cbs-test"), ("LIVE", "cbs-live")):
        cfn_template, resources = deploy(mode, prefix)
        seen[mode] = check_stack(mode, prefix, template, resources)
        print(f"{mode}: stack {prefix} deployed to the emulator: {len(resources)} resources")
    test, live = seen["TEST"], seen["LIVE"]
    check(test["queue"] != live["queue"], "TEST and LIVE share the edge queue")
    check(not set(test["tables"]) & set(live["tables"]), "TEST and LIVE share tables")
    check(not set(test["roles"]) & set(live["roles"]), "TEST and LIVE share roles")
    check(test["user"] != live["user"] and test["topic"] != live["topic"], "TEST and LIVE share the Worker user or topic")
    if problems:
        for p in problems:
            print(f"infra check: {p}", file=sys.stderr)
        sys.exit(1)
    print("infra check: TEST and LIVE stacks match what the platform needs")


if __name__ == "__main__":
    main()
