"""What a run tells and writes: typed results, planned outputs, summary, charts, report files."""
