"""The Gradio page of ``python -m inpainting.app``: layout and event wiring only.

The work is done by :mod:`inpainting.app.logic`; every handler turns a ``UserInputError`` into a
message on the page and any other failure into a short message (the traceback goes to the
server log), so the page never shows a stack trace and the server keeps serving.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Gradio reads this when it is imported: no usage statistics, no version check over the network.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
import gradio as gr  # noqa: E402

from inpainting.app.logic import (  # noqa: E402
    MAX_PIXELS,
    MAX_SIDE,
    MODEL_METHOD,
    known_from_layers,
    load_photo,
    new_request_folder,
    run_methods,
    sample_photos,
    save_png,
)
from inpainting.engine.errors import UserInputError  # noqa: E402
from inpainting.engine.images import check_image_file  # noqa: E402
from inpainting.predict.inference import Inpainter  # noqa: E402

__all__ = ["build_page", "check_sizes_before_decoding", "serve"]

logger = logging.getLogger(__name__)

BASELINES = ("OpenCV Telea", "OpenCV Navier-Stokes")
NO_MODEL_NOTE = (
    "No model loaded: the page runs the classical OpenCV methods only. To add a network, train "
    "one (`make demo`, about 5 minutes on a CPU, writes `runs/demo-*/best.pt`) and start the "
    "app with `python -m inpainting.app --checkpoint runs/demo-.../best.pt` (or `make app`)."
)
# Local fonts only: the default theme would have the browser fetch fonts from the internet.
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def check_sizes_before_decoding(editor: gr.ImageEditor) -> gr.ImageEditor:
    """Make ``editor`` refuse an image the browser sends (background, painted layer, composite)
    that is over :data:`MAX_PIXELS` from its header, before Gradio decodes it: a request can
    carry a layer of any size, and a small file of 13000x13000 would otherwise cost seconds and
    400 MB before a handler sees it. The refusal is one line on the page (a ``gr.Error``).

    Wraps the editor's per-image decoding step (a subclass would make Gradio write a ``.pyi``
    file beside this module).
    """
    decode = editor.convert_and_format_image

    def checked(file: Any, flatten_on_white: bool = False) -> Any:
        if file is not None:
            source = io.BytesIO(file) if isinstance(file, (bytes, bytearray)) else file.path
            try:
                check_image_file(source, "a painted layer", MAX_PIXELS)
            except UserInputError as error:
                raise gr.Error(str(error), print_exception=False) from None
        return decode(file, flatten_on_white)

    editor.convert_and_format_image = checked  # type: ignore[method-assign]
    return editor


def _guarded(handler: Callable[..., tuple], outputs: int) -> Callable[..., tuple]:
    """Run ``handler``; on failure leave the other outputs as they are and set the message
    (the last output) to one line."""

    def run(*args: Any) -> tuple:
        try:
            return handler(*args)
        except UserInputError as error:
            message = f"**Cannot do that:** {error}"
        except Exception:  # the page shows one line, the server log keeps the traceback
            logger.exception("request failed")
            message = "**Something went wrong** (the details are in the server's log)."
        return (*[gr.skip()] * (outputs - 1), message)

    return run


def _load(path: str | None) -> tuple:
    """Photo file -> (editor value, photo state, message)."""
    if not path:
        return None, None, ""
    photo, note = load_photo(path)
    editor = {"background": photo, "layers": [], "composite": None}
    return editor, photo, note or "Paint over what to remove, then press **Inpaint**."


def _inpaint(inpainter: Inpainter | None, workdir: Path,
             editor: dict | None, photo: np.ndarray | None) -> tuple:
    """(editor value, photo) -> (one image per method, before/after, download, message)."""
    if photo is None:
        raise UserInputError("upload a photo or pick a sample first")
    known = known_from_layers((editor or {}).get("layers") or [], photo.shape[:2])
    results = run_methods(photo, known, inpainter)
    best = MODEL_METHOD if MODEL_METHOD in results else BASELINES[0]
    folder = new_request_folder(workdir)
    path = save_png(results[best], folder / "inpainted.png")
    mask_path = save_png(np.where(known, 255, 0).astype(np.uint8), folder / "mask.png")
    holes = int((~known).sum())
    message = (f"Filled {holes} pixels ({holes / known.size:.1%} of the photo) with "
               f"{', '.join(results)}. The download is the {best} result; the mask is white = "
               "known, black = hole, ready for `python -m inpainting.predict --mask`.")
    images = [results.get(MODEL_METHOD)] + [results[name] for name in BASELINES]
    return (*images, (photo, results[best]), gr.DownloadButton(value=str(path), interactive=True),
            gr.DownloadButton(value=str(mask_path), interactive=True), message)


def build_page(inpainter: Inpainter | None, model_label: str, workdir: Path) -> gr.Blocks:
    """The page: photo upload and samples, brush editor, the methods' results side by side.

    Args:
        inpainter: the loaded model, or None for the classical methods only.
        model_label: what the page calls the model (e.g. the checkpoint path).
        workdir: folder for the PNG downloads.
    """
    with gr.Blocks(title="Partial-convolution inpainting", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as page:
        gr.Markdown("## Inpainting with partial convolutions\n"
                    f"{'Model: `' + model_label + '`' if inpainter else NO_MODEL_NOTE}\n\n"
                    f"Photos larger than {MAX_SIDE} px on a side are downscaled; files over "
                    f"{MAX_PIXELS // 1_000_000} megapixels (painted layers included) are refused.")
        photo = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Photo", file_types=["image"], type="filepath",
                                 elem_id="photo-upload")
                samples = sample_photos()
                if samples:
                    gr.Examples([[str(path)] for path in samples], inputs=upload,
                                label="Sample photos (CC0, from scikit-image)")
            with gr.Column(scale=2):
                editor = gr.ImageEditor(
                    label="Paint the holes", type="numpy", image_mode="RGBA", format="png",
                    sources=(), transforms=(), layers=False, elem_id="editor",
                    brush=gr.Brush(default_size="auto", colors=[("#ff2d55", 0.75)],
                                   color_mode="fixed"),
                    eraser=gr.Eraser(default_size="auto"),
                )
                check_sizes_before_decoding(editor)
        with gr.Row():
            run = gr.Button("Inpaint", variant="primary", elem_id="inpaint")
            download = gr.DownloadButton("Download result (PNG)", interactive=False,
                                         elem_id="download")
            download_mask = gr.DownloadButton("Download mask (PNG)", interactive=False,
                                              elem_id="download-mask")
        status = gr.Markdown("", elem_id="status")
        with gr.Row():
            model_image = gr.Image(label="Model", format="png", interactive=False, height=320,
                                   visible=inpainter is not None, elem_id="result-model")
            baseline_images = [gr.Image(label=name, format="png", interactive=False, height=320)
                               for name in BASELINES]
        compare = gr.ImageSlider(label="Input / result (drag the slider)", format="png",
                                 interactive=False, max_height=420)

        upload.change(_guarded(_load, 3), inputs=upload, outputs=[editor, photo, status])
        outputs = [model_image, *baseline_images, compare, download, download_mask, status]
        run.click(_guarded(lambda *args: _inpaint(inpainter, workdir, *args), len(outputs)),
                  inputs=[editor, photo], outputs=outputs)
    return page


def serve(inpainter: Inpainter | None, model_label: str, host: str, port: int,
          workdir: Path, block: bool = True) -> gr.Blocks:
    """Build the page and serve it on ``host:port``.

    Raises:
        OSError: the port cannot be opened.
    """
    page = build_page(inpainter, model_label, workdir)
    page.queue(default_concurrency_limit=1)  # one inpainting at a time: the CPU is the limit
    page.launch(server_name=host, server_port=port, show_error=False, theme=THEME,
                allowed_paths=[str(path) for path in sample_photos()],
                prevent_thread_lock=not block, quiet=False)
    return page
