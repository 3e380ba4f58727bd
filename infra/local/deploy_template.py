#!/usr/bin/env python3
"""Writes the template `sam deploy` uploads: infra/template.yaml with each function's CodeUri
pointing at the directory `cargo lambda build --release --arm64` produced for it
(<artifacts>/<binary>/bootstrap), and the cargo-lambda build metadata removed, so `sam deploy`
packages exactly those binaries and never rebuilds them.

    deploy_template.py --artifacts $CARGO_TARGET_DIR/lambda --out infra/build/template.test.yaml
"""

import argparse
import sys
from pathlib import Path

import yaml

import sam


class _Tag(str):
    """A CloudFormation short-form tag (!Ref, !Sub, ...) kept as written."""


def _keep_tags():
    def construct(loader, tag_suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"__tag__": "!" + tag_suffix, "value": value}

    yaml.SafeLoader.add_multi_constructor("!", construct)

    def represent(dumper, data):
        if isinstance(data, dict) and set(data) == {"__tag__", "value"}:
            value = data["value"]
            tag = data["__tag__"]
            if isinstance(value, list):
                return dumper.represent_sequence(tag, value, flow_style=True)
            if isinstance(value, dict):
                return dumper.represent_mapping(tag, value)
            return dumper.represent_scalar(tag, value)
        return dumper.represent_dict(data)

    yaml.SafeDumper.add_representer(dict, represent)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()

    _keep_tags()
    template = yaml.safe_load(sam.TEMPLATE.read_text(encoding="utf-8"))
    missing = []
    for name, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = res["Metadata"]["BuildProperties"]["Binary"]
        artefact = (args.artifacts / binary).resolve()
        if not (artefact / "bootstrap").is_file():
            missing.append(str(artefact / "bootstrap"))
        res["Properties"]["CodeUri"] = str(artefact)
        res.pop("Metadata", None)
    if missing:
        sys.exit("missing build output (run cargo lambda build --release --arm64): " + ", ".join(missing))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump(template, sort_keys=False, width=100), encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
