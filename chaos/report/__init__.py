"""What a run leaves for people and for CI: result.json, junit.xml, report.html, and the live display."""
