"""Recall channels behind one batch interface (`base.BaseRecall`) and their merge."""
