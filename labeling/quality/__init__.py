"""Label quality, one module per figure: agreement and gold checks, coverage, likely label
errors, review and adjudication, stopping, throughput; the summary status shows, charts, the
HTML report."""
