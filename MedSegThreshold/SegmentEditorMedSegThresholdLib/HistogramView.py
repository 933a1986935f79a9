"""A volume histogram under a threshold range: bars from MedSegCore.threshold.histogram, the bins
inside the range drawn in the segment's colour (as Slicer's Threshold effect shows its histogram).
Drawing only: the counts are computed in MedSegCore."""
import qt

from MedSegCore.errors import MedSegError
from MedSegCore.threshold import histogram


class HistogramView:
    """A QLabel (``widget``) showing the histogram as a pixmap."""

    def __init__(self, width=256, height=48):
        self.widget = qt.QLabel()
        self.widget.setMinimumHeight(height)
        self.widget.toolTip = "Histogram of the volume; the bins inside the threshold range are coloured."
        self.size, self.heights, self.edges = (width, height), None, None

    def setVolumeArray(self, array):
        """Histogram of a new volume (None, or a constant volume: empty)."""
        try:
            self.heights, self.edges = histogram.display_bins(array) if array is not None else (None, None)
        except MedSegError:
            self.heights, self.edges = None, None

    def setRange(self, lower, upper, color=(1.0, 1.0, 0.0)):
        """Redraw with ``lower .. upper`` highlighted in ``color`` (RGB 0..1)."""
        w, h = self.size
        pixmap = qt.QPixmap(w, h)
        pixmap.fill(qt.QColor(40, 40, 40))
        if self.heights is not None:
            selected = histogram.bins_in_range(self.edges, lower, upper)
            painter = qt.QPainter(pixmap)
            grey, bright = qt.QColor(150, 150, 150), qt.QColor(*[int(255 * color[i]) for i in range(3)])
            step = w / len(self.heights)
            for i, (value, inside) in enumerate(zip(self.heights, selected)):
                bar = max(1, int(round(value * (h - 2)))) if value > 0 else 0
                painter.fillRect(int(i * step), h - bar, max(1, int(step)), bar, bright if inside else grey)
            painter.end()
        self.widget.setPixmap(pixmap)
