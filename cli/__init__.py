"""The ``equisearch`` command line: a thin edge over the library, like ``ui/``.

One module per command family (:mod:`cli.sources`, :mod:`cli.query`,
:mod:`cli.store`, :mod:`cli.evaluate`, :mod:`cli.lists`, :mod:`cli.serve`);
what they share is in :mod:`cli.common`; :mod:`cli.app` builds the group and
registers every command. Nothing is imported here, so importing one command
module does not pull in the others.
"""
