"""Label quality: agreement, gold, coverage, review and adjudication, charts, the HTML report."""
