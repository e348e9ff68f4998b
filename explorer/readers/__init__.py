"""Reader studies: blinded reading sessions for radiologists, stored safely, analysed as the field does.

The modules, in the order a study uses them:

* :mod:`~explorer.readers.session`: build a session from a study spec, a study folder or the demonstration
  (:func:`~explorer.readers.session.build_from_spec`, :func:`~explorer.readers.session.build_from_study`,
  :func:`~explorer.readers.session.build_demo`; settings in :class:`~explorer.readers.options.ReadingOptions`;
  the study's units made again with their images in :mod:`~explorer.readers.reconstructions`);
* :mod:`~explorer.readers.design`: cases, balanced left/right placement, repeats, opaque ids, readers' orders;
* :mod:`~explorer.readers.tasks`: the tasks (Likert criteria and anchors, 2AFC, detection) and their answer forms;
* :mod:`~explorer.readers.store`: the session file (SQLite, WAL): its layout, opening, writing, a consistent copy;
* :mod:`~explorer.readers.codes`: readers and their personal codes;
* :mod:`~explorer.readers.tables`: the investigator's side: status, the unblinded tables, export to CSV / Parquet;
* :mod:`~explorer.readers.reading`: :class:`~explorer.readers.reading.Reading`, the only API a reading page calls
  (every call takes the reader's code; it never returns a method name or another reader's answer);
* :mod:`~explorer.readers.simulated`: SIMULATED readers (scripted model observers) for tests and the demonstration;
* :mod:`~explorer.readers.analysis`: :func:`~explorer.readers.analysis.analyse` -> tables (ratings with bootstrap
  intervals, 2AFC preferences, detection ROC / LROC areas, kappa and ICC, consistency, metric correlations);
* :mod:`~explorer.readers.links`: the sessions built from a study folder, registered in its ``readers/`` folder;
* :mod:`~explorer.readers.report`: their analysis as the study report's "Reader study" sections and one CSV
  (names and order of the tables: :mod:`~explorer.readers.names`, shared with the Reader studies page).

Importing this package imports nothing else; import the modules you need (``session`` brings in the engine).
"""
