"""Plumbing: scales and paths (``config``), atomic writes and hashes (``files``), results files
(``results``), claims as data (``claims``), the task graph (``pipeline``), the book's offline
JavaScript (``webassets``), and the entry points (``cli``, ``bench``)."""
