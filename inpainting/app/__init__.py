"""A local web page to try a checkpoint on your own photo: ``python -m inpainting.app``.

Upload or pick a photo, paint the holes with a brush, and compare the network's result with
OpenCV's Telea and Navier-Stokes inpainting. The logic lives in :mod:`inpainting.app.logic`
(no Gradio needed); :mod:`inpainting.app.page` is the Gradio layout (``pip install .[app]``).
"""
