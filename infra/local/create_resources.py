#!/usr/bin/env python3
"""Create the data resources of infra/template.yaml (DynamoDB tables, the SQS queues with their
redrive policy, the SNS topic) in a local emulator, through its CloudFormation API.

The template is translated exactly as for a deploy; only resources of the data types are kept
(moto cannot run the functions, and the bridge and scheduler stand in for their triggers). The
stack name and table prefix are both the given prefix, so every test can use its own prefix on
one shared emulator. Prints one JSON object with what was created.

    create_resources.py --endpoint http://127.0.0.1:5000 --prefix t-1234 \
        [--visibility-timeout 2] [--max-receive-count 3] [--mode TEST]
"""

import argparse
import json
import sys

import sam

DATA_TYPES = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::KMS::Key"}


def data_only(cfn_template):
    out = dict(cfn_template)
    out["Resources"] = {
        name: res for name, res in cfn_template["Resources"].items() if res["Type"] in DATA_TYPES
    }
    out.pop("Outputs", None)
    return out


def apply_ttl(endpoint, template, resources):
    """moto's CloudFormation ignores TimeToLiveSpecification; apply it from the template."""
    dynamodb = sam.client("dynamodb", endpoint)
    for name, res in template["Resources"].items():
        ttl = res["Properties"].get("TimeToLiveSpecification")
        if res["Type"] == "AWS::DynamoDB::Table" and ttl:
            dynamodb.update_time_to_live(
                TableName=resources[name]["PhysicalResourceId"],
                TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"],
                    "Enabled": bool(ttl["Enabled"]),
                },
            )


def queue_url(sqs, physical_id):
    return sqs.get_queue_url(QueueName=physical_id.rsplit("/", 1)[-1])["QueueUrl"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--prefix", required=True, help="stack name and TablePrefix")
    ap.add_argument("--mode", default="TEST", choices=["TEST", "LIVE"])
    ap.add_argument("--visibility-timeout", type=int, help="edge queue visibility, seconds")
    ap.add_argument("--max-receive-count", type=int, help="receives before the dead-letter queue")
    args = ap.parse_args()

    params = sam.stack_parameters(
        args.mode,
        args.prefix,
        EdgeQueueVisibilitySeconds=args.visibility_timeout,
        EdgeQueueMaxReceiveCount=args.max_receive_count,
    )
    template = data_only(sam.translate(parameters=params))
    # The CloudFormation API only accepts parameters the template declares.
    declared = template.get("Parameters", {})
    params = {k: v for k, v in params.items() if k in declared}
    resources = sam.create_stack(args.endpoint, args.prefix, json.dumps(template), params)

    apply_ttl(args.endpoint, template, resources)

    sqs = sam.client("sqs", args.endpoint)
    # Ask the emulator for the URLs so they point at it (CloudFormation reports the cloud form,
    # and the Worker posts to the queue URL itself).
    edge_url = queue_url(sqs, resources["EdgeQueue"]["PhysicalResourceId"])
    dlq_url = queue_url(sqs, resources["EdgeDeadLetterQueue"]["PhysicalResourceId"])
    edge_arn = sqs.get_queue_attributes(QueueUrl=edge_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    json.dump(
        {
            "table_prefix": args.prefix,
            "edge_queue_url": edge_url,
            "edge_queue_arn": edge_arn,
            "edge_dlq_url": dlq_url,
            "topic_arn": resources["OperationsTopic"]["PhysicalResourceId"],
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
