#!/usr/bin/env python3
"""Validates an AsyncAPI 3.0 document (JSON) against the official AsyncAPI JSON Schema from
@asyncapi/specs (installed into tests/asyncapi/node_modules by scripts/setup-test-deps), with the
jsonschema package of .venv/explore-tools. Exit 0 when valid; 1 with every error otherwise.

Usage: validate.py DOCUMENT.json
"""
import json
import os
import sys

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "node_modules", "@asyncapi", "specs", "schemas", "3.0.0.json")


def main():
    with open(SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    with open(sys.argv[1], encoding="utf-8") as f:
        document = json.load(f)
    # Every definition carries its own $id (http://asyncapi.com/definitions/3.0.0/…): register
    # them so references resolve offline.
    resources = [(schema["$id"], Resource.from_contents(schema, default_specification=DRAFT7))]
    for uri, definition in schema.get("definitions", {}).items():
        resources.append((uri, Resource.from_contents(definition, default_specification=DRAFT7)))
    registry = Registry().with_resources(resources)
    validator = jsonschema.Draft7Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path)
        print(f"{where}: {error.message[:300]}")
    if errors:
        sys.exit(1)
    print("valid AsyncAPI 3.0.0")


main()
