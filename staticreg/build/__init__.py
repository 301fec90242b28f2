"""From a folder of tarballs to a registry folder: a build's start, up to whether anything
changed (start, all that a no-op rebuild loads), the pipeline's stages (pipeline), finding
the tarballs (discovery), reading one (reader), the READMEs kept beside the output
(readmes), what a build remembers for the next (incremental) and the decision per package
(plan), writing the documents (writers) into a staging folder swapped in whole (output),
kept publish times (times) and the worker processes (workers)."""
