"""masks.paired: each image with its own mask by name (masks.source: paired), transformed with
its image, and one line for an image without its mask or a mask of another size."""

import numpy as np
import pytest
from PIL import Image
from run_helpers import run

from inpainting.data import InpaintingDataset
from inpainting.engine.config import ConfigError
from inpainting.engine.errors import UserInputError
from inpainting.tasks import load_config
from masks import save_mask
from masks.paired import MaskIndex, PairedMaskSource


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_index_finds_the_longest_matching_tail(tmp_path):
    flat, nested = _touch(tmp_path / "m" / "x.png"), _touch(tmp_path / "m" / "a" / "x.png")
    other = _touch(tmp_path / "m" / "b" / "y.jpg")
    index = MaskIndex.from_folder(tmp_path / "m")
    assert index.find("/data/photos/a/x.jpg") == nested  # a/x wins over x
    assert index.find("photos/c/x.webp") == flat
    assert index.find("b/y.png") == other and index.find("y.png") is None
    assert index.find("z.png") is None


def test_two_masks_of_one_name_and_a_missing_folder_are_refused(tmp_path):
    _touch(tmp_path / "m" / "x.png")
    _touch(tmp_path / "m" / "x.jpg")
    with pytest.raises(UserInputError,
                       match="masks 'x.jpg' and 'x.png' both pair with the image named 'x'"):
        MaskIndex.from_folder(tmp_path / "m")
    with pytest.raises(UserInputError, match="does not exist"):
        MaskIndex.from_folder(tmp_path / "nowhere")


def _paired_set(folder, count=3, size=(40, 48)):
    """Images red inside a box and blue outside, and masks whose hole is exactly the box."""
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for index in range(count):
        known = np.ones(size, np.uint8)
        known[5 + index:25, 10:30 + index] = 0
        image = np.zeros((*size, 3), np.uint8)
        image[..., 2] = 255
        image[known == 0] = (255, 0, 0)
        Image.fromarray(image).save(images / f"img{index}.png")
        save_mask(masks / f"img{index}.png", known)
    return images, masks


@pytest.mark.parametrize("train_resize", ["crop", "resize", "random_resized_crop"])
def test_the_mask_is_cropped_resized_and_flipped_with_its_image(tmp_path, train_resize):
    images, masks = _paired_set(tmp_path)
    dataset = InpaintingDataset(sorted(images.iterdir()), 32, train=True,
                                mask_source=PairedMaskSource(masks), seed=0,
                                train_resize=train_resize)
    for index in range(len(dataset)):
        sample = dataset[index]
        red = sample["image"][0] > sample["image"][2]  # (32, 32): the box, wherever it went
        hole = sample["mask"][0] == 0
        assert sample["mask"].shape == (1, 32, 32)
        assert set(sample["mask"].unique().tolist()) <= {0, 1}
        assert (red == hole).float().mean() > 0.97  # resizing blurs the box's edge a little


def test_a_mask_of_another_size_is_one_line(tmp_path):
    images, masks = _paired_set(tmp_path, count=1)
    save_mask(masks / "img0.png", np.ones((20, 20), np.uint8))
    source = PairedMaskSource(masks)
    with pytest.raises(UserInputError, match=r"mask '.*img0.png' is 20x20 but its image .* "
                       r"is 48x40; a paired mask must have its image's size"):
        source.load(images / "img0.png", (40, 48))


def test_training_with_paired_masks_and_its_set_up_errors(tiny_config, tmp_path):
    images, masks = _paired_set(tmp_path / "paired", count=5)
    base = [f"data.train={images}", "masks.val_count=2", "train.max_steps=2",
            "train.val_every=2", "train.ckpt_every=2", "masks.source=paired",
            f"masks.folder={masks}"]
    _, result = run(tiny_config, base)
    assert result.step == 2
    (masks / "img3.png").unlink()
    with pytest.raises(UserInputError, match=r"image '.*img3.png' of data.train has no mask in "):
        run(tiny_config, [*base, f"train.run_dir={tmp_path / 'run2'}"])
    assert not (tmp_path / "run2").exists()  # refused before anything is written
    with pytest.raises(ConfigError, match="masks.folder must be set when masks.source is "
                       "'paired'"):
        load_config(None, ["masks.source=paired"])
