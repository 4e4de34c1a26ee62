"""What a run leaves behind: the results file and its journal, the terminal output, JUnit XML, Markdown, the
HTML report with plots, and the diff of two results files. Writers read records; none runs a check."""
