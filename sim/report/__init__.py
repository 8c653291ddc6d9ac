"""What a run and a comparison look like to the architect: figures, report.md, report.html."""
