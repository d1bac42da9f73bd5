"""The data-prep service. The dataset catalog and cohort task kinds."""
