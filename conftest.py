# Running the package's __main__ as a doctest module would start the command-line tool.
collect_ignore = ["src/transferkit/__main__.py"]
