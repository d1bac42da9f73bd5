"""The data-prep service: the dataset catalog (ListDatasets, DescribeDataset, PreviewCohort); its task kinds
(simulate_cohort, import_meds, import_mimic3, sample_cohort) live in ehrlab.cohort.kinds."""
