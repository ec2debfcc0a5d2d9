"""One architecture per file; each exposes ``forward_features`` (embedding) and ``forward_head`` (logits)."""
