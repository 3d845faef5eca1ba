"""Plumbing: scales and paths (``config``), argument checks (``checks``), atomic writes and hashes
(``files``), on-disk caches (``cache``: key, read-or-make), results files (``results``), claims
as data (``claims``), the task graph (``pipeline``), the book's offline JavaScript
(``webassets``), and the entry points (``cli``, ``bench``)."""
