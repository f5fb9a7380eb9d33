"""``deployments/prefect-ecs.yaml``, generated from ``prefect.yaml``: the same deployments on the ECS pool.

``prefect.yaml`` is the one description of the deployments (names, entrypoints, parameters, schedules);
this module adds only what is ECS's own: the header (image, roles, pull step) and each task's size.
``python -m deployments.ecs`` rewrites the file; ``--check`` exits 1 when it is stale (the tests run it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from deployments.specs import PREFECT_YAML

ECS_YAML: Final = Path(__file__).resolve().parent / "prefect-ecs.yaml"

SIZES: Final[dict[str, tuple[int, int, str]]] = {
    "data-schema-determination": (2048, 4096, "segments scanned and inferred in threads"),
    "segment-etl": (2048, 8192, "extract, transform (gzip), upload, load overlap; ≈ max_in_flight × chunk × a few"),
    "centralization": (512, 1024, "the work happens inside Redshift"),
    "full-refresh": (2048, 4096, "may run the determination itself when the cache is stale"),
}
"""Deployment → (CPU units, MiB, why): Fargate task sizes."""

HEADER: Final = """\
# arm-etl on Amazon ECS: the same four deployments as ../prefect.yaml (same names, schedules, parameters),
# on the `arm-etl-ecs` work pool served by a prefect-aws ECS worker. One ECS task per flow run, so the N runs
# of segment-etl that full-refresh starts are N tasks. Deploy from the repository root:
#
#   prefect work-pool create arm-etl-ecs --type ecs          # needs prefect-aws where the worker runs
#   prefect variable set arm_etl_ecs_image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/arm-etl:0.1.0
#   prefect variable set arm_etl_ecs_task_role_arn arn:aws:iam::123456789012:role/arm-etl-task
#   prefect variable set arm_etl_ecs_execution_role_arn arn:aws:iam::123456789012:role/arm-etl-exec
#   prefect --no-prompt deploy --all --prefect-file deployments/prefect-ecs.yaml
#   prefect worker start --pool arm-etl-ecs                  # anywhere with prefect-aws and AWS access
#
# Variables are resolved when you run `prefect deploy`: set them first (a missing one becomes ""), and
#   prefect variable set arm_etl_table <your DynamoDB table>
# Deploying this file replaces the process-pool deployments of the same names (one pool per Prefect API).
#
# GENERATED from ../prefect.yaml by `python -m deployments.ecs` (deployments/ecs.py holds this header and the
# task sizes): edit those, not this file. tests/test_deployments.py fails when this file is stale.
#
# AWS credentials inside the task come from the task role (boto3's default chain); leave the Prefect
# variable arm_etl_aws_credentials_block unset unless you really need an AwsCredentials block. The task role
# needs dynamodb:Scan/DescribeTable on the table and s3:Get/Put/List on both buckets; Redshift's COPY uses
# the IAM role named in the RedshiftCredentials block, not the task role.

name: arm-etl
prefect-version: 3.9.1

# The code is baked into the image (deployments/Dockerfile), so nothing is built or pushed here:
#   docker build -f deployments/Dockerfile -t <ecr repo>/arm-etl:<version> .   &&   docker push …
build: null
push: null

# Baked image: the flow-run container starts in the image's copy of the repository.
pull:
- prefect.deployments.steps.set_working_directory:
    directory: /opt/arm-etl

# Alternative, code from git at run time on a generic image that has arm-etl's dependencies installed
# (then `image` may be prefecthq/prefect:3.9.1-python3.11 plus the requirements):
# pull:
# - prefect.deployments.steps.git_clone:
#     id: clone
#     repository: https://github.com/<org>/arm-etl.git
#     branch: main
#     access_token: '{{ prefect.blocks.secret.arm-etl-git-token }}'
# - prefect.deployments.steps.set_working_directory:
#     directory: '{{ clone.directory }}'
# - prefect.deployments.steps.run_shell_script:
#     script: pip install --no-deps -e .

definitions:
  work_pools:
    ecs: &ecs_pool
      name: arm-etl-ecs
      work_queue_name: default
      job_variables: &ecs_job
        image: '{{ prefect.variables.arm_etl_ecs_image }}'
        cpu: 1024                      # CPU units (1024 = 1 vCPU), Fargate sizes
        memory: 2048                   # MiB
        task_role_arn: '{{ prefect.variables.arm_etl_ecs_task_role_arn }}'
        execution_role_arn: '{{ prefect.variables.arm_etl_ecs_execution_role_arn }}'
        configure_cloudwatch_logs: true
        stream_output: true
        env:                           # no secrets here: credentials come from the task role and blocks
          AWS_REGION: eu-west-1
          AWS_DEFAULT_REGION: eu-west-1
          ARM_ETL_DATA_BUCKET: observes.etl-data
          ARM_ETL_CACHE_BUCKET: observes.cache
          PREFECT_SERVER_ANALYTICS_ENABLED: 'false'

deployments:
"""
"""The file up to its deployments: how to deploy it, the pull step, the ECS pool and its job variables."""


def render(source: Path = PREFECT_YAML) -> str:
    """The ECS file for the deployments of ``source``."""
    with source.open() as f:
        doc = yaml.safe_load(f)
    out = [HEADER]
    for d in doc["deployments"]:
        body: dict[str, Any] = {k: v for k, v in d.items() if k != "work_pool"}
        cpu, memory, why = SIZES[d["name"]]
        text = yaml.safe_dump([body], sort_keys=False, allow_unicode=True, width=110)
        out.append(
            "\n"
            + text
            + "  work_pool:\n    <<: *ecs_pool\n    job_variables:\n      <<: *ecs_job\n"
            + f"      cpu: {cpu}\n      memory: {memory}                     # {why}\n"
        )
    return "".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.ecs",
        description=f"Write {ECS_YAML.name} from prefect.yaml (the deployments on the arm-etl-ecs work pool).",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is stale")
    a = parser.parse_args(argv)
    text = render()
    if a.check:
        stale = not ECS_YAML.exists() or ECS_YAML.read_text() != text
        if stale:
            print(f"{ECS_YAML} is stale: run `python -m deployments.ecs`", file=sys.stderr)
        return 1 if stale else 0
    ECS_YAML.write_text(text)
    print(f"wrote {ECS_YAML}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
