"""Real servers for tests (S3 via Ceph radosgw, Prometheus, Pushgateway) and their pytest fixtures."""
