"""``smds`` / ``python -m soil_moisture_downscaling``: options and ``--help`` built from the Processing
algorithms' parameter specs; the run goes through the same engine calls as the algorithm.

Exit codes: 0 done; 1 the run failed (the algorithm's message, e.g. an ``InputError`` text) or was
canceled (``Canceled.``; nothing is left behind), or ``check`` found a blocking problem; 2 a usage error
(argparse).
"""
from __future__ import annotations

import argparse
import importlib
import html
import os
import re
import sys
from typing import Any, Optional, Sequence

from ..core.errors import Canceled, InputError
from ..processing_provider import specs
from ..processing_provider.param_names import EXTENT, OUTPUT, SM_DATES, SOIL_MOISTURE, TARGET_CRS
from .commands import COMMANDS, DOWNSCALE_METHODS, TRAIN_COMMANDS, DownscaleMethod

PROG = "smds"


def plain(text: str) -> str:
    """Simple HTML help → terminal text (argparse-safe: ``%`` doubled)."""
    text = re.sub(r"<br\s*/?>", "\n", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return text.replace("%", "%%")


def _bounded(kind: type, spec: specs.ParamSpec):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if spec.minimum is not None and value < spec.minimum or spec.maximum is not None and value > spec.maximum:
            raise argparse.ArgumentTypeError(f"{value} is outside {spec.minimum:g} … "
                                             f"{'∞' if spec.maximum is None else format(spec.maximum, 'g')}")
        return value
    return parse


def add_spec_options(parser: argparse.ArgumentParser, spec_list: Sequence[specs.ParamSpec]) -> None:
    """One option per spec; advanced ones in their own group (as under *Advanced parameters*)."""
    main = parser.add_argument_group("parameters")
    advanced = parser.add_argument_group("advanced parameters")
    for s in spec_list:
        group = advanced if s.advanced else main
        text = f"{plain(s.label)}. {plain(s.help)}"
        kw: dict[str, Any] = {"dest": s.name}
        if s.kind in (specs.LAYERS, specs.FILES):
            kw.update(nargs="+", metavar="FILE", required=not s.optional, default=[] if s.optional else None)
        elif s.kind in (specs.NUMBER, specs.INTEGER):
            kw.update(type=_bounded(float if s.kind == specs.NUMBER else int, s), default=s.default, metavar="N")
            text += " (default: %(default)s)"
        elif s.kind == specs.BOOL:
            kw.update(action=argparse.BooleanOptionalAction, default=bool(s.default))
            text += f" (default: {'on' if s.default else 'off'})"
        elif s.kind == specs.ENUM:
            kw.update(choices=s.values, default=s.values[s.default])
            text += " Choices: " + "; ".join(f"{v} = {plain(c)}" for v, c in zip(s.values, s.choices)) + \
                " (default: %(default)s)"
        elif s.kind == specs.AREA:
            kw.update(metavar="'XMIN,XMAX,YMIN,YMAX [CRS]'", default=None)
        elif s.kind == specs.FOLDER:
            kw.update(metavar="FOLDER", default=None)
        elif s.kind == specs.ENUMS:
            kw.update(nargs="+", choices=s.values, default=[s.values[i] for i in s.default], metavar="NAME")
            text += " Choices: " + "; ".join(f"{v} = {plain(c)}" for v, c in zip(s.values, s.choices)) + \
                " (default: " + " ".join(s.values[i] for i in s.default) + ")"
        elif s.kind in (specs.RASTER, specs.FOLDER_OUT):
            kw.update(metavar="FILE" if s.kind == specs.RASTER else "FOLDER", required=not s.optional, default=None)
        elif s.kind == specs.DATE:
            kw.update(type=_day, metavar="YYYY-MM-DD", default=None)
        elif s.kind in (specs.FILE, specs.FILE_OUT):
            kw.update(metavar=f"FILE.{s.extension}" if s.extension else "FILE", required=not s.optional, default=None)
        elif s.kind == specs.RASTER_OUT:
            kw.update(metavar="FILE.tif", required=not s.optional, default=None)
        else:  # strings, CRS
            kw.update(default=s.default, metavar="EPSG:XXXX" if s.kind == specs.CRS else "TEXT")
            if s.default:
                text += " (default: %(default)s)"
        group.add_argument(s.option, help=text, **kw)


def _day(text: str):
    import datetime as dt
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Soil-moisture downscaling from the command line: the "
                                     "Processing algorithms of the QGIS plugin, without QGIS.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    downscale = commands.add_parser("downscale", help="downscale a coarse soil-moisture series (one subcommand "
                                    "per method)", description="Downscale with one of the methods below.")
    methods = downscale.add_subparsers(dest="method", required=True, metavar="METHOD")
    for m in DOWNSCALE_METHODS:
        p = methods.add_parser(m.name, help=m.title, description=f"Processing: soil_moisture_downscaling:"
                               f"{m.algorithm}\n\n{plain(m.help)}", formatter_class=argparse.RawDescriptionHelpFormatter)
        add_spec_options(p, specs.SCENE_SPECS + m.specs + m.outputs)
        p.add_argument("--dask", metavar="local:N|tcp://HOST:PORT", default=None,
                       help="Predict the fine-grid row blocks on Dask: local:N starts N worker processes here, "
                            "tcp://host:port uses a running scheduler (its workers need this package and the input "
                            "files at the same paths). The output is identical to the run without --dask.")
        p.add_argument("--quiet", action="store_true", help="No progress, only the results.")
        p.set_defaults(run=lambda args, m=m: (globals()[m.run] if m.run else run_downscale)(m, args))
    train = commands.add_parser("train", help="train a model and save it as a verified model folder (one subcommand "
                                "per training algorithm)", description="Train one of the models below.")
    trainers = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    for group, entries in ((commands, COMMANDS), (trainers, TRAIN_COMMANDS)):
        for c in entries:
            p = group.add_parser(c.name, help=c.title, description=f"Processing: soil_moisture_downscaling:"
                                 f"{c.algorithm}\n\n{plain(c.help)}", formatter_class=argparse.RawDescriptionHelpFormatter)
            add_spec_options(p, c.specs)
            p.add_argument("--quiet", action="store_true", help="No progress, only the results.")
            p.set_defaults(run=lambda args, c=c: globals()[c.run](values_of(args, c.specs), args))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except Canceled:
        print("Canceled.", file=sys.stderr)
        return 1


# -- downscale -----------------------------------------------------------------------------------
def values_of(args: argparse.Namespace, spec_list: Sequence[specs.ParamSpec]) -> dict[str, Any]:
    """``{parameter name: value}`` as Processing would read it (enums as indices)."""
    out = {}
    for s in spec_list:
        v = getattr(args, s.name)
        out[s.name] = s.values.index(v) if s.kind == specs.ENUM else [s.values.index(x) for x in v] \
            if s.kind == specs.ENUMS else v
    return out


def scene_spec_of_args(values: dict[str, Any]):
    """The scene spec of the shared options, by the rules the Processing algorithms apply to layers."""
    from ..core.inputs.layers import GivenLayer, covariate_inputs, soil_moisture_refs
    sm = soil_moisture_refs([GivenLayer.of_file(p) for p in values[SOIL_MOISTURE]], values[SM_DATES] or "",
                            specs.SM_DATES_SPEC.option)
    covs = covariate_inputs([(role, [GivenLayer.of_file(p) for p in values[key]])
                             for key, role, _ in specs.COVARIATE_PARAMS])
    extent, extent_crs = _extent(values[EXTENT])
    if extent_crs:
        raise InputError(f"--extent {values[EXTENT]}: give the area in the target CRS (or, without a target CRS, "
                         "the finest covariate's), without a [CRS] suffix.")
    return specs.scene_spec_of(values, sm, covs, _crs_wkt(values[TARGET_CRS]), extent)


def _crs_wkt(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    from osgeo import osr
    srs = osr.SpatialReference()
    try:
        srs.SetFromUserInput(text)
    except RuntimeError:
        raise InputError(f"--target-crs {text}: not a CRS GDAL knows. Fix: give e.g. EPSG:32618.") from None
    return srs.ExportToWkt()


def _extent(text: Optional[str]) -> tuple[Optional[tuple[float, float, float, float]], Optional[str]]:
    """``((xmin, ymin, xmax, ymax), crs or None)`` of Processing's extent text ``xmin,xmax,ymin,ymax [EPSG:4326]``."""
    if not text:
        return None, None
    m = re.fullmatch(r"\s*([^\[]+?)\s*(?:\[(.+)\])?\s*", text)
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in m.group(1).split(","))
    except (ValueError, AttributeError):
        raise InputError(f"--extent {text}: give four numbers xmin,xmax,ymin,ymax (as Processing does), "
                         "optionally followed by [EPSG:xxxx].") from None
    return (xmin, ymin, xmax, ymax), (m.group(2).strip() if m.group(2) else None)


def _tif(path: str) -> str:
    return path if path.lower().endswith((".tif", ".tiff")) else os.path.splitext(path)[0] + ".tif"


class _Run:
    """What every downscaling subcommand does around its method: read the options, open the scene (the
    algorithm's first phase, same log lines), then run inside Ctrl-C handling and the chosen block executor."""

    def __init__(self, method: DownscaleMethod, args: argparse.Namespace) -> None:
        self.values = values_of(args, specs.SCENE_SPECS + method.specs + method.outputs)
        self.quiet = args.quiet
        self.dask = args.dask
        self.out = _tif(os.path.abspath(self.values[OUTPUT]))

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def destination(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The output file of parameter ``name`` (``default`` when not given), checked writable."""
        given = self.values.get(name)
        path = _tif(os.path.abspath(given)) if given else default
        if path:
            from ..core.io.destination import check_destination
            check_destination(path, what=f"{name} ({path})")
        return path

    def open_scene(self, rasters: int = 1, scene=None):
        """The scene of the options (or ``scene``, opened already), described; the output checked for room."""
        from ..core.inputs.scene import Scene
        from ..core.io.destination import check_destination, estimate_raster_bytes
        self.say("Checking inputs")
        scene = scene or Scene(scene_spec_of_args(self.values))
        for line in scene.summary_lines():
            self.say(line)
        check_destination(self.out, estimate_raster_bytes(scene.fine.width, scene.fine.height, len(scene.dates),
                                                          rasters), what=f"{OUTPUT} ({self.out})")
        return scene

    def run(self, label: str, call):
        """``call(progress, is_canceled)`` on the block executor of ``--dask`` (this process without it)."""
        from ..core.methods.blocks import DaskBlocks, SerialBlocks, use_blocks
        from .dask_cluster import dask_client
        from .progress import CtrlC, Progress
        progress = (lambda f, m: None) if self.quiet else Progress()
        with CtrlC() as canceled, dask_client(self.dask) as client, \
                use_blocks(DaskBlocks(client) if client is not None else SerialBlocks()):
            if client is not None:
                self.say(f"Dask: {len(client.scheduler_info()['workers'])} workers at {client.scheduler.address}")
            self.say(label)
            try:
                return call(progress, canceled)
            finally:
                if not self.quiet:
                    progress.done()


def run_downscale(method: DownscaleMethod, args: argparse.Namespace) -> int:
    from ..core.methods.result import trend_residual_summary
    r = _Run(method, args)
    sd_path = r.destination("KRIGING_SD")
    options = method.options(r.values)
    downscale = importlib.import_module(f"..core.methods.{method.module}", __package__).downscale
    scene = r.open_scene()
    res = r.run("Downscaling", lambda progress, canceled: downscale(scene, r.out, options, progress, canceled, sd_path))
    for line in trend_residual_summary(res):
        r.say(line)
    print(f"{OUTPUT}: {res.path}")
    print(f"RUN_LOG: {res.log_path}")
    if res.extra.get("kriging_sd"):
        print(f"KRIGING_SD: {res.extra['kriging_sd']}")
    return 0


def run_ensemble(method: DownscaleMethod, args: argparse.Namespace) -> int:
    """As ``downscale_ensemble``: the folder given, else the richest bundled tier the layers satisfy
    (Processing's *Automatic* default); the interval when the card is calibrated; anchoring when asked."""
    from ..core.learn.model_folder import Ensemble, EnsembleError, list_ensembles
    from ..core.methods.insitu_ensemble.apply import (EnsembleOutputs, card_lines, coarse_level_warning,
                                                      domain_lines, predict)
    from ..core.methods.insitu_ensemble.tiers import pick_tier
    r = _Run(method, args)
    from ..core.inputs.scene import Scene
    scene = Scene(scene_spec_of_args(r.values))
    folder = r.values["MODEL_FOLDER"]
    if not folder:
        choice = pick_tier(list_ensembles([_bundled_root()]), scene)
        folder = choice.folder
    try:
        ensemble = Ensemble.load(folder)
    except EnsembleError as e:
        raise InputError(f"Ensemble '{os.path.basename(folder)}' refused: {e}") from None
    base = os.path.splitext(r.out)[0]
    calibrated = "uncertainty" in ensemble.card
    outputs = EnsembleOutputs(r.out, r.destination("SPREAD", base + "_spread.tif"),
                              r.destination("DOMAIN_MASK", base + "_outside_domain.tif"),
                              r.destination("INTERVAL", base + "_interval.tif") if calibrated else None)
    r.open_scene(scene=scene, rasters=4 if calibrated else 3)
    if not r.values["MODEL_FOLDER"]:
        r.say(choice.message())
    for line in card_lines(ensemble):
        r.say(line)
    res = r.run("Predicting", lambda progress, canceled: predict(
        ensemble, scene, outputs, progress=progress, is_canceled=canceled,
        anchor_to_coarse=bool(r.values["ANCHOR_TO_COARSE"])))
    warning = coarse_level_warning(res)
    if warning:
        print(warning, file=sys.stderr)
    for line in domain_lines(res):
        r.say(line)
    print(f"{OUTPUT}: {outputs.mean}\nSPREAD: {outputs.spread}\nDOMAIN_MASK: {outputs.domain_mask}")
    if res.extra["interval"]:
        print(f"INTERVAL: {res.extra['interval']}")
    print(f"RUN_LOG: {res.log_path}")
    return 0


def run_cross_scale(method: DownscaleMethod, args: argparse.Namespace) -> int:
    """As ``downscale_cross_scale``: the trained folder's network, or one trained self-supervised; the output
    resolution by default the product's cell ÷ the training ratio."""
    import dataclasses

    from ..core.inputs.scene import Scene
    from ..core.methods import cross_scale as cs
    from ..core.methods.result import conservation_lines, progress_span
    r = _Run(method, args)
    folder = r.values["MODEL_FOLDER"]
    spread = r.destination("SPREAD")
    model = cs.CrossScaleModel.load(folder) if folder else None
    opts = specs.cross_scale_options(r.values, coherent=bool(r.values["COHERENT"]))
    ratio = model.ratio if model is not None else opts.ratio
    spec = scene_spec_of_args(r.values)
    if spec.resolution is None:
        first = Scene(spec).coarse
        spec = dataclasses.replace(spec, resolution=cs.default_resolution(first.dx, ratio),
                                   resolution_y=cs.default_resolution(first.dy, ratio))
    scene = r.open_scene(scene=Scene(spec))

    def run(progress, canceled):
        nonlocal model
        if model is None:
            model = cs.fit(scene, opts, (), progress_span(progress, 0.0, 0.5), canceled)
            for line in cs.training_report(model.training).splitlines():
                r.say(line)
        return cs.predict(model, scene, cs.CrossScaleOutputs(r.out, spread), progress_span(progress, 0.5, 1.0),
                          canceled, coherent_output=opts.coherent)
    res = r.run("Training (self-supervised) and downscaling" if not folder else "Downscaling", run)
    for line in conservation_lines(res.dates, res.conservation):
        r.say(line)
    print(f"{OUTPUT}: {res.path}\nSPREAD: {res.extra['spread']}\nRUN_LOG: {res.log_path}")
    return 0


def run_stacking(method: DownscaleMethod, args: argparse.Namespace) -> int:
    """As ``downscale_stacking``: zones, the stack fitted (or a saved one applied), the trend → residual run;
    the report and the fitted stack when asked."""
    import tempfile

    from ..core.inputs.scene import Scene
    from ..core.io.output import write_text_atomic
    from ..core.methods import stacking
    from ..core.methods.result import progress_span, trend_residual_summary
    from ..core.methods.stacking_report import report_html
    r = _Run(method, args)
    v = r.values
    opts, rule = specs.stacking_options(v)
    sd_path = r.destination("KRIGING_SD", os.path.splitext(r.out)[0] + "_kriging_sd.tif")
    with tempfile.TemporaryDirectory(prefix="smds-zones-") as tmp:
        saved = stacking.StackingModel.load(v["MODEL_IN"]) if v["MODEL_IN"] else None
        spec = scene_spec_of_args(v)
        if saved is None or saved.trend.zone_name:
            zone_raster = (v["ZONE_RASTER"], os.path.splitext(os.path.basename(v["ZONE_RASTER"]))[0]) \
                if v["ZONE_RASTER"] else None
            zone, line = specs.stacking_zone(v, spec.covariates, rule, tmp, zone_raster)
            if line:
                r.say(line)
            if zone is not None:
                spec.covariates.append(zone)
        scene = r.open_scene(scene=Scene(spec))

        def run(progress, canceled):
            model = saved or stacking.fit(scene, opts, progress_span(progress, 0.0, 0.4), canceled)
            warnings, lines = specs.stacking_fit_lines(model.training)
            for line in warnings:
                print(line, file=sys.stderr)
            for line in lines:
                r.say(line)
            if v["MODEL_OUT"]:
                os.makedirs(v["MODEL_OUT"], exist_ok=True)
                print(f"MODEL_OUT: {model.save(v['MODEL_OUT'])}")
            if v["REPORT"]:
                print(f"REPORT: {write_text_atomic(os.path.abspath(v['REPORT']), report_html(model.training))}")
            return stacking.predict(model, scene, r.out, progress_span(progress, 0.4, 1.0), canceled, sd_path)
        res = r.run("Fitting the stack and downscaling" if saved is None else "Downscaling", run)
    for line in trend_residual_summary(res):
        r.say(line)
    print(f"{OUTPUT}: {res.path}\nRUN_LOG: {res.log_path}")
    if res.extra.get("kriging_sd"):
        print(f"KRIGING_SD: {res.extra['kriging_sd']}")
    return 0


def run_deep_ensemble(method: DownscaleMethod, args: argparse.Namespace) -> int:
    """As ``downscale_deep_ensemble``: the members fitted (or a saved folder applied), the trend → residual run,
    the spread and report beside the output, the fitted members saved when asked."""
    from ..core.methods import deep_ensemble as de
    from ..core.methods.result import trend_residual_summary
    r = _Run(method, args)
    if r.dask:
        raise InputError("--dask does not reach the deep ensemble: its members run in this process (the trend is "
                         "stored in a temporary file between its two passes).", fix="leave out --dask.")
    v = r.values
    opts = method.options(v)
    base = os.path.splitext(r.out)[0]
    sd_path = r.destination("KRIGING_SD", base + "_kriging_sd.tif")
    spread = r.destination("SPREAD", base + "_spread.tif")
    saved = de.DeepEnsembleModel.load(v["MODEL_IN"]) if v["MODEL_IN"] else None
    scene = r.open_scene(rasters=2)
    res = r.run("Fitting the ensemble and downscaling" if saved is None else "Downscaling", lambda progress, canceled:
                de.downscale(scene, r.out, opts, progress, canceled, sd_path, spread, v["MODEL_OUT"] or None, saved))
    for line in specs.deep_ensemble_lines(res.training) + trend_residual_summary(res):
        r.say(line)
    print(f"{OUTPUT}: {res.path}\nSPREAD: {res.extra['spread']}\nREPORT: {res.extra['report']}\nRUN_LOG: {res.log_path}")
    if res.extra.get("kriging_sd"):
        print(f"KRIGING_SD: {res.extra['kriging_sd']}")
    if v["MODEL_OUT"]:
        print(f"MODEL_OUT: {v['MODEL_OUT']}")
    return 0


def _bundled_root() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")


# -- import-product ------------------------------------------------------------------------------
def run_import_product(values: dict[str, Any], args: argparse.Namespace) -> int:
    from ..core.io.products import import_products
    from .progress import CtrlC, Progress

    bounds, bounds_crs = _extent(values["EXTENT"])
    if bounds is not None and bounds_crs is None:
        bounds_crs = "EPSG:4326"
    out = _tif(os.path.abspath(values[OUTPUT]))
    progress = (lambda f, m: None) if args.quiet else Progress()
    with CtrlC() as canceled:
        try:
            result = import_products(list(values["INPUT"]), out, bounds, bounds_crs, specs.product_options(values),
                                     progress, canceled)
        finally:
            if not args.quiet:
                progress.done()
    if not args.quiet:
        print(f"{result.product}: {len(result.dates)} dates on a {result.grid.width}×{result.grid.height} grid of "
              f"{result.grid.dx:g}", file=sys.stderr)
        for line in result.log:
            print(line, file=sys.stderr)
    print(f"{OUTPUT}: {out}")
    return 0


# -- score -----------------------------------------------------------------------------------------
def run_score(values: dict[str, Any], args: argparse.Namespace) -> int:
    """As ``score_stations``: the product (and the coarse one) scored at the stations of the CSV tables."""
    from ..core.evaluation.score_table import format_table
    from ..core.evaluation.station_scoring import product_refs, read_station_inputs, sample_refs, score_with_notes
    from ..core.evaluation.stations import write_scores_csv
    from ..core.inputs.layers import GivenLayer
    from ..processing_provider.param_names import INSITU_CSV, SCORES_CSV, STATIONS_CSV

    names = specs.score_product_names(values, {k: bool(values[k]) for k in ("PRODUCT", "COARSE")})
    products = {}
    for key, name in names.items():
        layers = [GivenLayer.of_file(p) for p in values[key]]
        products[name] = product_refs([(g.path, g.name) for g in layers], [g.bands for g in layers])
    out = os.path.abspath(values[SCORES_CSV]) if values[SCORES_CSV] else None
    if out:
        from ..core.io.destination import check_destination
        check_destination(out, what=f"{SCORES_CSV} ({out})")
    got = read_station_inputs(None, values[STATIONS_CSV], values[INSITU_CSV])
    for text in got.reports:
        print(text, file=sys.stderr)
    rows, warning = score_with_notes(got, {n: sample_refs(refs, got.stations) for n, refs in products.items()}, products)
    if warning:
        print(warning, file=sys.stderr)
    print(format_table(rows, list(products)))
    if out:
        write_scores_csv(rows, out)
        print(f"{SCORES_CSV}: {out}")
    return 0


# -- import-ismn -----------------------------------------------------------------------------------
def run_import_ismn(values: dict[str, Any], args: argparse.Namespace) -> int:
    """As ``import_ismn``: the daily in-situ table (and the stations as CSV when asked); the toolbox's
    station point layer is the stations CSV here (``--output-stations-csv``), which ``score`` reads."""
    from ..core.io.destination import check_destination
    from ..core.io.ismn import ismn_log_lines, read_ismn, write_series_csv, write_stations_csv
    from .progress import CtrlC, Progress

    options = specs.ismn_options(values)
    outs = {k: os.path.abspath(values[k]) for k in ("OUTPUT_SERIES", "OUTPUT_STATIONS_CSV") if values[k]}
    for key, path in outs.items():
        check_destination(path, what=f"{key} ({path})")
    progress = (lambda f, m: None) if args.quiet else Progress()
    with CtrlC() as canceled:
        try:
            result = read_ismn(values["INPUT"], options, progress, canceled)
        finally:
            if not args.quiet:
                progress.done()
    if not args.quiet:
        for line in ismn_log_lines(result):
            print(line, file=sys.stderr)
    print(f"OUTPUT_SERIES: {write_series_csv(result, outs['OUTPUT_SERIES'])}")
    if "OUTPUT_STATIONS_CSV" in outs:
        print(f"OUTPUT_STATIONS_CSV: {write_stations_csv(result, outs['OUTPUT_STATIONS_CSV'])}")
    return 0


# -- check -----------------------------------------------------------------------------------------
def run_check(values: dict[str, Any], args: argparse.Namespace) -> int:
    """As ``check_inputs``: the report's lines on stdout (warnings and blocking problems too), the HTML page
    when ``--output-html`` is given; exit status 1 when a blocking problem was found."""
    from ..core.inputs.check import check_layers
    from ..core.inputs.layers import GivenLayer
    from ..core.io.atomic import atomic_write_text
    from .progress import CtrlC, Progress

    layers = [(g.path, g.name, role, how) for key, role, how in specs.CHECK_INPUTS_ROLES
              for g in (GivenLayer.of_file(p) for p in values[key])]
    if not layers:
        raise InputError("Give at least one raster layer (under 'Raster layers' or a role).",
                         fix="list files after --inputs, or under a role such as --soil-moisture or --ndvi.")
    progress = (lambda f, m: None) if args.quiet else Progress()
    with CtrlC() as canceled:
        try:
            report = check_layers(layers, bool(values["APPROXIMATE"]), progress, canceled)
        finally:
            if not args.quiet:
                progress.done()
    for _, line in report.lines():
        print(line)
    if values["OUTPUT_HTML"]:
        out = os.path.abspath(values["OUTPUT_HTML"])
        atomic_write_text(out, report.html("Check soil-moisture inputs"))
        print(f"OUTPUT_HTML: {out}")
    return 1 if report.blocking_count else 0


# -- train -----------------------------------------------------------------------------------------
def run_train_cross_scale(values: dict[str, Any], args: argparse.Namespace) -> int:
    """As ``train_cross_scale``: fit, then install the model folder whole (a folder in use is replaced only
    once the new one is complete, and only with ``--overwrite``)."""
    import shutil
    import tempfile

    from ..core.inputs.layers import GivenLayer, soil_moisture_refs
    from ..core.inputs.scene import Scene
    from ..core.io.atomic import install_folder
    from ..core.methods import cross_scale as cs
    from .progress import CtrlC, Progress

    dest, name = specs.network_destination(values, None)
    specs.check_network_destination(dest, bool(values["OVERWRITE"]))
    report = os.path.abspath(values["REPORT"]) if values["REPORT"] else ""
    opts = specs.cross_scale_options(values)
    fine = soil_moisture_refs([GivenLayer.of_file(p) for p in values["FINE_SOIL_MOISTURE"]], "",
                              specs.FINE_SOIL_MOISTURE_SPEC.option) if values["FINE_SOIL_MOISTURE"] else []
    scene = Scene(scene_spec_of_args(values))
    if not args.quiet:
        print(f"{len(scene.dates)} dates; coarse cells {scene.coarse.dx:g}; "
              + (f"finer product: {len(fine)} bands" if fine else "self-supervised"), file=sys.stderr)
    progress = (lambda f, m: None) if args.quiet else Progress()
    with CtrlC() as canceled:
        try:
            model = cs.fit(scene, opts, fine, progress, canceled)
        finally:
            if not args.quiet:
                progress.done()
    text = cs.training_report(model.training)
    if not args.quiet:
        print(text, file=sys.stderr)
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".training-{name}-", dir=parent)
    try:
        model.save(os.path.join(tmp, name), name=name)
        dest = install_folder(os.path.join(tmp, name), dest, bool(values["OVERWRITE"]), tmp, what="A network")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if report:
        specs.write_training_report(report, name, text)
        print(f"REPORT: {report}")
    print(f"MODEL_FOLDER: {dest}")
    return 0


# -- report ----------------------------------------------------------------------------------------
def run_report(values: dict[str, Any], args: argparse.Namespace) -> int:
    """As ``site_report``: scores at the stations, diagnostics per product, one HTML report + per-site CSV."""
    from ..core.evaluation import site_run as sr
    from ..core.evaluation.score_table import format_table
    from ..core.evaluation.station_scoring import read_station_inputs
    from ..core.inputs.layers import GivenLayer
    from ..processing_provider.param_names import INSITU_CSV, SCORES_CSV, STATIONS_CSV
    from .progress import CtrlC, Progress

    def rasters(key: str) -> list:
        return [sr.Raster(g.path, g.bands, g.name) for g in (GivenLayer.of_file(p) for p in values[key])]
    coarse_name = str(values["COARSE_NAME"] or "").strip() or "coarse"
    products = sr.group_products(rasters("PRODUCTS"), sr.product_names(values["PRODUCT_NAMES"]))
    sr.check_coarse_name(products, coarse_name)
    coarse_refs = sr.dated_refs(rasters("COARSE"), coarse_name)
    html_path = os.path.abspath(values["REPORT"])
    if not html_path.lower().endswith((".html", ".htm")):
        html_path += ".html"
    csv_path = os.path.abspath(values[SCORES_CSV]) if values[SCORES_CSV] else os.path.splitext(html_path)[0] + "_sites.csv"
    cons_path, cv_path = (_tif(os.path.abspath(values[k])) if values[k] else None for k in ("CONSERVATION", "HETEROGENEITY"))
    got = read_station_inputs(None, values[STATIONS_CSV], values[INSITU_CSV])
    for text in got.reports:
        print(text, file=sys.stderr)
    scored = sr.score_at_stations(got, products, coarse_name, coarse_refs)
    if scored.warning:
        print(scored.warning, file=sys.stderr)
    print(format_table(scored.rows, list(scored.sampled)))
    diagnostics, drought, written = {}, {}, []
    progress = (lambda f, m: None) if args.quiet else Progress()
    with CtrlC() as canceled:
        try:
            for i, (name, refs) in enumerate(products.items()):
                d = sr.diagnose(name, i, refs, coarse_refs, float(values["MIN_COVERAGE"]), cons_path, cv_path,
                                progress, canceled)
                diagnostics[name], drought[name] = d.summary, d.drought
                for line in d.lines + d.warnings:
                    print(line, file=sys.stderr)
                written += [path for _, path, _ in d.rasters]
        finally:
            if not args.quiet:
                progress.done()
    sr.write_site_report(html_path, csv_path, scored, got, products, coarse_name, coarse_refs, diagnostics, drought,
                         str(values["TITLE"] or ""))
    print(f"REPORT: {html_path}\n{SCORES_CSV}: {csv_path}")
    for path in written:
        print(f"DIAGNOSTIC_RASTER: {path}")
    return 0


def run_train_ensemble(values: dict[str, Any], args: argparse.Namespace) -> int:
    """As ``train_ensemble``: the same samples (a station table, or rasters at the stations of the CSV tables),
    schemes, members, cards and report; the folder is ``--model-output`` (no QGIS profile), installed whole once
    training is done."""
    import shutil
    import tempfile

    from ..core.io.atomic import install_folder
    from ..core.methods.insitu_ensemble import samples_from_station_table, train_ensemble
    from ..core.methods.insitu_ensemble.preflight import check_station_table, check_training_plan
    from ..core.methods.insitu_ensemble.report import summary_lines
    from .progress import CtrlC, Progress

    table = values["STATION_TABLE"]
    if table and values[SOIL_MOISTURE]:
        raise InputError("Both a station table and soil-moisture layers were given.", fix="give either the station "
                         "table, or the rasters (coarse soil moisture, covariates, stations and in-situ table), not both.")
    if not table and not values[SOIL_MOISTURE]:
        raise InputError("No training data.", fix="give a station table (--station-table FILE.csv), or coarse "
                         "soil-moisture layers with covariates, --stations-csv and --insitu-csv.")
    if not table and not values["INSITU_CSV"]:
        raise InputError("Training on rasters needs in-situ soil moisture.", fix="give the in-situ table "
                         "(--insitu-csv) and the stations (--stations-csv).")
    name = str(values["ENSEMBLE_NAME"]).strip()
    if not re.match(specs.MODEL_NAME_PATTERN, name):
        raise InputError(f"The ensemble name '{name}' cannot be a folder name.", fix="use letters, digits, '_', '-' "
                         "or '.' (64 at most), starting with a letter or digit.")
    dest, overwrite = os.path.abspath(values["MODEL_OUTPUT"]), bool(values["OVERWRITE"])
    if os.path.exists(dest) and not overwrite:
        raise InputError(f"'{dest}' already exists.", fix="choose another folder, or give --overwrite.")
    opts = specs.ensemble_training_options(values, name=name)
    features, min_samples = list(opts.feature_names), int(values["MIN_SAMPLES_PER_STATION"])
    if table:
        check_station_table(table, features)
        try:
            samples = samples_from_station_table(table, features, min_samples)
        except ValueError as e:
            raise InputError(f"Station table {os.path.basename(table)}: {e}") from None
        coarse_label = "coarse SMAP (smap10km_ssm_mm / 50 mm)"
    else:
        samples = _samples_at_stations(values, features, min_samples, args.quiet)
        coarse_label = "coarse soil moisture"
    if len(samples) == 0:
        raise InputError(f"No usable sample: no station has {min_samples} or more rows with an in-situ value, coarse "
                         f"soil moisture and every input feature ({', '.join(features)}).",
                         fix="lower --min-samples-per-station or choose features the data have.")
    schemes, skipped = specs.chosen_schemes(samples, list(opts.schemes) if values["SCHEMES"] else [])
    check_training_plan(samples, features, list(opts.architectures), schemes, opts.cv_folds, opts.holdout_fraction)
    if not args.quiet:
        print(f"{len(samples)} samples at {samples.sites.size} stations, {samples.date.min()} … {samples.date.max()}; "
              f"inputs {', '.join(features)}", file=sys.stderr)
        if skipped and not values["SCHEMES"]:
            print("Weighting schemes the data do not support, left out: " + "; ".join(skipped), file=sys.stderr)
        print(f"Architectures {', '.join(opts.architectures)}; schemes {', '.join(schemes)}", file=sys.stderr)
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".training-{name}-", dir=parent)
    progress = (lambda f, m: None) if args.quiet else Progress()
    try:
        with CtrlC() as canceled:
            try:
                report = train_ensemble(samples, features, list(opts.architectures), schemes, opts.cv_folds, opts.seed,
                                        os.path.join(tmp, name), progress, canceled, name=name,
                                        description=str(values["DESCRIPTION"] or "").strip()
                                        or specs.ensemble_description(samples, table),
                                        mlp_config=opts.mlp_config, forest_config=opts.forest_config,
                                        holdout_fraction=opts.holdout_fraction)
            except ValueError as e:
                if isinstance(e, InputError):
                    raise
                raise InputError(f"Training failed: {e}") from None
            finally:
                if not args.quiet:
                    progress.done()
        dest = install_folder(os.path.join(tmp, name), dest, overwrite, tmp, what="An ensemble")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.out_folder = dest
    if not args.quiet:
        print(report.format() + "\n" + "\n".join(summary_lines(report, coarse_label)), file=sys.stderr)
    if values["REPORT"]:
        path = os.path.abspath(values["REPORT"])
        specs.write_ensemble_report(path, report, samples, coarse_label)
        print(f"REPORT: {path}")
    print(f"MODEL_FOLDER: {dest}")
    print(f"N_MEMBERS: {len(report.members)}")
    return 0


def _samples_at_stations(values: dict[str, Any], features: list, min_samples: int, quiet: bool):
    """Training samples from the rasters at the stations of ``--stations-csv`` with ``--insitu-csv``."""
    from ..core.evaluation.station_scoring import read_station_inputs
    from ..core.inputs.scene import Scene
    from ..core.methods.insitu_ensemble.raster_samples import samples_from_scene
    from .progress import CtrlC, Progress

    scene = Scene(scene_spec_of_args(values))
    got = read_station_inputs(None, values["STATIONS_CSV"], values["INSITU_CSV"])
    for text in got.reports:
        print(text, file=sys.stderr)
    progress = (lambda f, m: None) if quiet else Progress()
    with CtrlC() as canceled:
        try:
            samples = samples_from_scene(scene, got.stations, got.insitu.dates, got.insitu.values, features, progress,
                                         canceled, min_samples_per_site=min_samples)
        finally:
            if not quiet:
                progress.done()
    src = samples.source
    if src.get("stations_outside"):
        print("Stations outside the layers, left out: " + ", ".join(src["stations_outside"]), file=sys.stderr)
    if src.get("stations_too_few"):
        print(f"Stations with fewer than {min_samples} usable samples, left out: "
              + ", ".join(src["stations_too_few"]), file=sys.stderr)
    return samples
