"""Claims: the pack's ledger, figures, query understanding, extraction, linking and lookup."""
