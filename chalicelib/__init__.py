"""chiptracker: tracks China's AI chips (Zhenwu, Hanguang, Kunlun, Ascend …) in the news."""

__version__ = "0.1.0"
