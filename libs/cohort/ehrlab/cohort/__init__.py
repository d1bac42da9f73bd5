"""Cohort data: ICD-9-CM codes and validity rules (icd9), MEDS IO and the patient view (meds), the cohort
simulator (simulator), MIMIC-III import (mimic3), cohort sampling (sampling) and their task kinds (kinds)."""
