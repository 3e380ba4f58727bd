"""Shared by the local tools: read infra/template.yaml, translate SAM to plain CloudFormation
with samtranslator (moto silently drops AWS::Serverless::* resources), and talk to moto.

Nothing here knows table or queue names: they all come from the template, so the local stack and
the cloud stacks cannot drift apart.
"""

import copy
import os
from pathlib import Path

import boto3
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
REGION = os.environ.get("AWS_REGION", "eu-west-1")
# A placeholder code location for translation and the emulator; the real deploy path packages
# the functions with `sam build` / `sam deploy`, which rewrites CodeUri itself.
PLACEHOLDER_CODE_BUCKET = "cbs-local-artifacts"
PLACEHOLDER_CODE_KEY = "functions.zip"


class _NoManagedPolicies:
    """The template names managed policies by ARN only, so no IAM lookup is ever needed."""

    def load(self):
        return {}


def load_template(path=TEMPLATE):
    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def translate(template=None, parameters=None):
    """SAM -> CloudFormation, with every function's CodeUri pointing at the placeholder zip."""
    sam = copy.deepcopy(template if template is not None else load_template())
    for resource in sam.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{PLACEHOLDER_CODE_BUCKET}/{PLACEHOLDER_CODE_KEY}"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(sam, parameters or {}, _NoManagedPolicies())


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def stack_parameters(mode, table_prefix, **extra):
    """The parameters a stack is deployed with; secret *names*, never values."""
    lower = mode.lower()
    params = {
        "Mode": mode,
        "TablePrefix": table_prefix,
        "CbsApiKeySecretName": f"cbs/{lower}/api-key",
        "WebhookSecretName": f"cbs/{lower}/webhook-secret",
    }
    params.update({k: str(v) for k, v in extra.items() if v is not None})
    return params


def create_stack(endpoint, stack_name, template_body, parameters):
    cfn = client("cloudformation", endpoint)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=template_body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    # moto lists some resources it only half models (e.g. Lambda permissions) without ids.
    return {r["LogicalResourceId"]: r for r in resources if "LogicalResourceId" in r}
