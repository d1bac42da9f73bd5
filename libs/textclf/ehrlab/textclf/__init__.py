"""ehrlab.textclf: sentence classification and evidence span extraction on transformer encoders."""
