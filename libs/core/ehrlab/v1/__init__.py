"""Generated gRPC API (protos/ehrlab/v1). Regenerate with `make protos`; never edit by hand."""
