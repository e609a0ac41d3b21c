"""The doctor's workspace: today's queue on the left, the chart of the patient chosen from
it (or found by the search) on the right."""

from __future__ import annotations

import uuid

from desktop.ui.chart import ChartView
from desktop.ui.desk import Desk
from desktop.ui.qt import QSplitter, QVBoxLayout, QWidget
from desktop.ui.queue import QueueView


class ConsultationView(QWidget):
    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.queue = QueueView(desk)
        self.queue.setObjectName("queue")
        self.queue.setMinimumWidth(240)
        self.chart = ChartView(desk)
        split = QSplitter()
        split.setObjectName("consultation_split")
        split.addWidget(self.queue)
        split.addWidget(self.chart)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([280, 1000])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self.queue.patient_chosen.connect(self.open_chart)

    def open_chart(self, patient_id: uuid.UUID, appointment_id: uuid.UUID | None) -> None:
        self.chart.open_patient(patient_id, appointment_id)
