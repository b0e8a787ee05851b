"""Videos of episodes on pixel tasks: each observation's newest frame, as an MP4 or a GIF.

    frames = [frame_of(observation, spec.observation_kind) for observation in observations]
    write_video(frames, "episodes.mp4")

MP4 goes through imageio's ffmpeg plugin (imageio-ffmpeg ships the ffmpeg binary), GIF
through Pillow; both are pinned in requirements.txt.
"""

import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from gtrxl_jax.envs.spec import PIXELS_CHW, PIXELS_HWC

PIXEL_KINDS = (PIXELS_CHW, PIXELS_HWC)
VIDEO_SUFFIXES = (".mp4", ".gif")
_MIN_HEIGHT = 240  # small observations (84 x 84) are scaled up by a whole factor to this


def frame_of(observation: np.ndarray, kind: str) -> np.ndarray:
    """The newest frame of one pixel observation, as RGB.

    Observations stack their frames along the channel axis, oldest first (envpool's
    `stack_num`): RGB frames when the channels are a multiple of 3 (Procgen, ViZDoom,
    Memory Maze), else gray ones (Atari).

    Args:
      observation: uint8 [C, H, W] (kind PIXELS_CHW) or [H, W, C] (PIXELS_HWC).
      kind: the observation kind.

    Returns:
      uint8 [H, W, 3].
    """
    if kind not in PIXEL_KINDS:
        raise ValueError(f"Only pixel observations {PIXEL_KINDS} have frames, not {kind!r}.")
    image = np.moveaxis(observation, 0, -1) if kind == PIXELS_CHW else observation
    if image.shape[-1] % 3 == 0:
        return np.ascontiguousarray(image[..., -3:])
    return np.repeat(image[..., -1:], 3, axis=-1)


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 15) -> None:
    """Write RGB frames as a video; its suffix (.mp4 or .gif) picks the format.

    Args:
      frames: uint8 [H, W, 3] each, all of one size.
      path: the file to write.
      fps: frames per second.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"A video is written as one of {VIDEO_SUFFIXES}, not {path.name!r}.")
    video = np.stack(frames)
    scale = max(1, _MIN_HEIGHT // video.shape[1])
    video = video.repeat(scale, axis=1).repeat(scale, axis=2)
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, video, duration=1000 / fps, loop=0)
        return
    # H.264 needs even sides; frames of even sides pass unresized (ffmpeg's default block of
    # 16 would rescale an 84-pixel side). imageio-ffmpeg starts ffmpeg with fork and exec,
    # which is safe, but JAX warns of any fork in a process that runs it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                category=RuntimeWarning)
        iio.imwrite(path, video, fps=fps, macro_block_size=2)
