"""`make bench`: arm-etl against an orjson floor, a naive boto3 script and dlt, on replayed DynamoDB Scan pages.

The parent (``python -m bench``) renders the seed data once as 1 MB Scan pages, serves them from a replay
endpoint (``bench.replay``), starts moto (S3), embedded PostgreSQL and a Prefect API, then runs every row
in its own subprocess (``python -m bench.run_one``) so CPU time and peak RSS are per row.
"""
