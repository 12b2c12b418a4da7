"""The ``progress="tqdm"`` adapter: a tqdm bar fed by a run's progress."""

from typing import Any, Optional


class Tqdm:
    """A callable ``(done, total)`` that draws a tqdm bar (``tqdm.auto``)."""

    def __init__(self) -> None:
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError('progress="tqdm" needs tqdm: pip install "smm-core[progress]"') from e
        self._tqdm = tqdm
        self._bar: Optional[Any] = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = self._tqdm(total=total, unit="it", unit_scale=True, desc="simulate")
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
