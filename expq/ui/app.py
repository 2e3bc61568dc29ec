"""The dashboard's web application: a few HTML pages (one page script renders them) and a JSON API.

Reading needs nothing. Changing the queue (cancel, retry) needs the token ``expq ui`` printed in
its URL, sent back by the page in the ``X-Expq-Token`` header; without it the answer is 403, and
a read-only dashboard refuses every action. A custom header also keeps other sites' pages from
posting to it (a cross-site request cannot set one without a CORS preflight, which is refused).

Errors: an unknown experiment, run or job is a 404 (a page for a page URL, JSON for the API); a
file path that leaves its run directory is a 403; a torn or unparseable file reads as missing.
"""
from __future__ import annotations

import hmac
import html
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from expq.errors import InputError, NotFound
from expq.ui import queue_data, run_states, runs_data
from expq.ui.paths import Refused, experiment_dir, file_in_run, read_text_from, run_dir
from expq.ui.series import MetricStore

__all__ = ["create_app", "plotly_bundle", "STATIC"]

STATIC = Path(__file__).with_name("static")
INLINE = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".txt", ".log", ".json", ".yaml", ".csv"}


def plotly_bundle() -> Path:
    """plotly.js as the ``plotly`` package ships it (found without importing plotly).

    Raises:
        NotFound: the ``plotly`` package is not installed.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("plotly package", "plotly (install expq[ui])")
    bundle = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not bundle.is_file():
        raise NotFound("plotly.js bundle", str(bundle))
    return bundle


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _error(status: int, message: str) -> JSONResponse:
    return _json({"error": message}, status)


def _not_found_page(message: str) -> HTMLResponse:
    body = (f"<!doctype html><meta charset=utf-8><title>expq: not found</title><link rel=stylesheet href=/static/app.css>"
            f"<main class=notfound><h1>404</h1><p>{html.escape(message)}</p><p><a href=/>back to the queue</a></p></main>")
    return HTMLResponse(body, status_code=404)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        raise InputError(f"not a number: {value!r}") from None


def create_app(root: Path, token: str, read_only: bool = False, store: MetricStore | None = None,
               hosts: list[str] | None = None) -> Starlette:
    """The application serving ``root``; ``token`` authorises actions unless ``read_only``.

    ``hosts``: the only Host headers answered (None: any). A dashboard on 127.0.0.1 answers only to
    its own names, so a web page whose domain an attacker re-points at 127.0.0.1 (DNS rebinding)
    cannot read it.
    """
    store = store or MetricStore()
    states = run_states.RunStates()
    bundle = plotly_bundle()
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    def api(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        """A JSON endpoint: NotFound is 404, a refused path 403, bad input 400."""
        def endpoint(request: Request) -> Response:
            try:
                result = handler(request)
            except NotFound as exc:
                return _error(404, str(exc))
            except Refused as exc:
                return _error(403, str(exc))
            except InputError as exc:
                return _error(400, str(exc))
            return result if isinstance(result, Response) else _json(result)
        return endpoint

    def show_page(check: Callable[[Request], object] | None = None) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            if check is not None:
                try:
                    check(request)
                except (NotFound, InputError) as exc:
                    return _not_found_page(str(exc))
            return HTMLResponse(page, headers={"Cache-Control": "no-store"})
        return endpoint

    def action(verb: Callable[[Path, int], str]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            if read_only:
                return _error(403, "this dashboard is read-only (started with --read-only)")
            given = request.headers.get("x-expq-token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _error(403, "this action needs the token printed by `expq ui` (open the URL it printed)")
            job = int(request.path_params["job"])
            try:
                return _json({"job": job, "outcome": verb(root, job)})
            except NotFound as exc:
                return _error(404, str(exc))
            except InputError as exc:
                return _error(409, str(exc))
        return endpoint

    def q(request: Request, name: str) -> str:
        value = request.query_params.get(name)
        if not value:
            raise InputError(f"missing query parameter {name!r}")
        return value

    def run_file(request: Request) -> Response:
        path = file_in_run(run_dir(root, q(request, "experiment"), q(request, "run")), q(request, "path"))
        inline = path.suffix.lower() in INLINE and request.query_params.get("download") is None
        media = "text/plain; charset=utf-8" if path.suffix.lower() in (".log", ".txt", ".yaml", ".csv") else None
        # A run's files are the run's, not the dashboard's: an SVG or HTML file opened from here runs
        # no script in the dashboard's origin (sandbox), and is never sniffed into another type.
        return FileResponse(path, media_type=media, filename=path.name,
                            content_disposition_type="inline" if inline else "attachment",
                            headers={"Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; "
                                                                "style-src 'unsafe-inline'",
                                     "X-Content-Type-Options": "nosniff"})

    def run_log(request: Request) -> Any:
        path = run_dir(root, q(request, "experiment"), q(request, "run"))
        name = q(request, "name")
        if name not in runs_data.LOGS:
            raise Refused(f"refused: {name!r} is not a log (one of {', '.join(runs_data.LOGS)})")
        return read_text_from(path / name, _int(request.query_params.get("offset")))

    routes = [
        Route("/", show_page()),
        Route("/experiments", show_page()),
        Route("/experiments/{exp}", show_page(lambda r: experiment_dir(root, r.path_params["exp"]))),
        Route("/experiments/{exp}/runs/{run:path}",
              show_page(lambda r: run_dir(root, r.path_params["exp"], r.path_params["run"]))),
        Route("/jobs/{job:int}", show_page(lambda r: queue_data.job_record(root, r.path_params["job"]))),
        Route("/static/plotly.min.js", lambda r: FileResponse(bundle, headers={"Cache-Control": "max-age=86400"})),
        Route("/static/{name:str}", api(lambda r: _static(r.path_params["name"]))),
        Route("/api/info", api(lambda r: {"root": str(root), "read_only": read_only})),
        Route("/api/queue", api(lambda r: queue_data.queue_view(root))),
        Route("/api/jobs/{job:int}", api(lambda r: queue_data.job_record(root, r.path_params["job"]))),
        Route("/api/jobs/{job:int}/log", api(lambda r: queue_data.job_log(
            root, r.path_params["job"], r.query_params.get("stream", "stdout"), _int(r.query_params.get("offset"))))),
        Route("/api/jobs/{job:int}/cancel", action(queue_data.cancel_job), methods=["POST"]),
        Route("/api/jobs/{job:int}/retry", action(queue_data.retry_job), methods=["POST"]),
        Route("/api/experiments", api(lambda r: run_states.experiments(root, states))),
        Route("/api/experiments/{exp}/runs", api(lambda r: runs_data.runs_table(
            root, r.path_params["exp"], store, tuple(r.query_params.getlist("maximize"))))),
        Route("/api/experiments/{exp}/series", api(lambda r: runs_data.series(
            root, r.path_params["exp"], q(r, "metric"), r.query_params.getlist("run"), store,
            "time" if r.query_params.get("x") == "time" else "step"))),
        Route("/api/run", api(lambda r: runs_data.run_details(root, q(r, "experiment"), q(r, "run")))),
        Route("/api/run/log", api(run_log)),
        Route("/api/run/file", api(run_file)),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)] if hosts else []
    app = Starlette(routes=routes, middleware=middleware)
    app.add_exception_handler(404, _unknown_url)
    return app


async def _unknown_url(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return _error(404, f"no such URL: {request.url.path}")
    return _not_found_page(f"no such page: {request.url.path}")


def _static(name: str) -> Response:
    """The page's own script and style (plotly.js comes from the installed package, above)."""
    if name not in ("app.js", "app.css"):
        raise NotFound("static file", name)
    media = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})
