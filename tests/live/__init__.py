"""The opt-in live suite: the end-to-end flows against a real Redshift and real S3 (``make test-redshift``)."""
