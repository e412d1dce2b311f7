"""Downscaling methods: one module (or sub-package) per method, and the pieces they compose.

The contract every method keeps
-------------------------------
* **Inputs**: a :class:`core.inputs.scene.Scene` (every layer on the fine grid and the coarse
  grid, read in blocks) and the method's own options dataclass (defaults are the defaults of its
  Processing algorithm, so a scene alone is enough).
* **Fit and predict are separate** wherever a method learns something::

      model = method.fit(scene, options, progress, is_canceled)       # on the coarse grid / samples
      model.save(folder)                                              # ONNX + card, or verified joblib
      result = method.predict(model, scene, output, progress, is_canceled)

  so a fitted model can be applied to other dates, areas or layers later; ``method.downscale``
  is both in one call. A method that learns from stations (:mod:`.insitu_ensemble`) fits on
  station samples instead of a scene.
* **Progress and cancel are callables**: ``progress(fraction, message)`` and ``is_canceled() ->
  bool``, polled inside every block loop; a cancelled run raises :class:`core.errors.Canceled`.
* **Outputs are atomic**: rasters through :class:`core.io.output.RasterWriter` (temporary file,
  then rename), styles and JSON run logs through :mod:`core.io.atomic` — a failed or cancelled
  run leaves nothing half-written.
* **One result type**: :class:`.result.DownscaleResult` (raster, run log, dates, conservation
  figures, what was fitted, seconds, method-specific extras).
* **Bad input** raises :class:`core.errors.InputError` naming the layer and the fix.

Modules
-------
* :mod:`.regression` — trend + residual correction (SVR / random forest / gradient boosting).
* :mod:`.svatark` — SVR per stratum + area-to-point kriging (Jin et al.), composed from the same pieces.
* :mod:`.insitu_ensemble` — in-situ-trained ensembles (Poehls et al.): train, apply.
* :mod:`.deep_ensemble` — DNN + CNN + LSTM trained over several resolutions, as the trend of the same
  trend → residual pipeline (held-out scores, weights, permutation importance, spread).
* shared pieces: :mod:`.trend` (trend regressors on the coarse grid), :mod:`.trend_weight` (how much
  of the trend to trust: its cross-validated skill), :mod:`.residual` (residual models spreading the
  coarse residual onto the fine grid, one interface), :mod:`.pipeline` (any trend → any residual
  model), :mod:`.result` (the result type, progress helpers).
"""
