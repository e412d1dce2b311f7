"""``smds`` / ``python -m soil_moisture_downscaling``: options and ``--help`` built from the Processing
algorithms' parameter specs; the run goes through the same engine calls as the algorithm.

Exit codes: 0 done; 1 the run failed (the algorithm's message, e.g. an ``InputError`` text) or was
canceled (``Canceled.``; nothing is left behind); 2 a usage error (argparse).
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
from .commands import COMMANDS, DOWNSCALE_METHODS, DownscaleMethod

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
        elif s.kind == specs.RASTER_OUT:
            kw.update(metavar="FILE.tif", required=not s.optional, default=None)
        else:  # strings, CRS
            kw.update(default=s.default, metavar="EPSG:XXXX" if s.kind == specs.CRS else "TEXT")
        group.add_argument(s.option, help=text, **kw)


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
    for c in COMMANDS:
        p = commands.add_parser(c.name, help=c.title, description=f"Processing: soil_moisture_downscaling:"
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
        out[s.name] = s.values.index(v) if s.kind == specs.ENUM else v
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

    def open_scene(self, rasters: int = 1):
        from ..core.inputs.scene import Scene
        from ..core.io.destination import check_destination, estimate_raster_bytes
        self.say("Checking inputs")
        scene = Scene(scene_spec_of_args(self.values))
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
    (Processing's *Automatic* default)."""
    from ..core.learn.model_folder import Ensemble, EnsembleError, list_ensembles
    from ..core.methods.insitu_ensemble.apply import EnsembleOutputs, predict
    from ..core.methods.insitu_ensemble.tiers import pick_tier
    r = _Run(method, args)
    scene = r.open_scene(rasters=3)
    folder = r.values["MODEL_FOLDER"]
    if not folder:
        choice = pick_tier(list_ensembles([_bundled_root()]), scene)
        r.say(choice.message())
        folder = choice.folder
    try:
        ensemble = Ensemble.load(folder)
    except EnsembleError as e:
        raise InputError(f"Ensemble '{os.path.basename(folder)}' refused: {e}") from None
    base = os.path.splitext(r.out)[0]
    outputs = EnsembleOutputs(r.out, r.destination("SPREAD", base + "_spread.tif"),
                              r.destination("DOMAIN_MASK", base + "_outside_domain.tif"))
    card = ensemble.card
    r.say(f"Ensemble '{ensemble.name}': {ensemble.n_members} members; inputs "
          + ", ".join(f"{x['name']} ({x['units']})" for x in card["inputs"]))
    res = r.run("Predicting", lambda progress, canceled: predict(ensemble, scene, outputs, progress=progress,
                                                                  is_canceled=canceled))
    for d, dom in zip(res.dates, res.extra["domain"]):
        if dom["outside_fraction"] > 0:
            r.say(f"{d}: {dom['outside_fraction']:.1%} of pixels outside the training domain")
    print(f"{OUTPUT}: {outputs.mean}\nSPREAD: {outputs.spread}\nDOMAIN_MASK: {outputs.domain_mask}\n"
          f"RUN_LOG: {res.log_path}")
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
