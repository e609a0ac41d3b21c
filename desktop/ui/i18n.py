"""Spanish and English for the screens.

Text is written in English in the code and looked up here for Spanish. The language
comes from the saved setting, else from the system locale (Spanish for any `es_*`),
and can be switched from the menu; screens re-read their text on `language_changed`.
"""

from __future__ import annotations

import locale

from desktop.ui.i18n_doctor import SPANISH as DOCTOR_SPANISH
from desktop.ui.i18n_prescribing import SPANISH as PRESCRIBING_SPANISH
from desktop.ui.qt import QObject, Signal

LANGUAGES = ("es", "en")

SPANISH: dict[str, str] = {
    # sign-in and first run
    "Sign in": "Iniciar sesión",
    "E-mail": "Correo electrónico",
    "Password": "Contraseña",
    "Server address": "Dirección del servidor",
    "Enrolment code": "Código de registro",
    "Enrol this computer": "Registrar este equipo",
    "Signed in offline: changes are kept here and sent when the server is back.":
        "Sesión sin conexión: los cambios se guardan aquí y se envían cuando vuelva el "
        "servidor.",
    "Screen locked. Sign in again to continue.":
        "Pantalla bloqueada. Inicie sesión de nuevo para continuar.",
    # main window
    "Front desk": "Recepción",
    "Calendar": "Agenda",
    "Patients": "Pacientes",
    "Needs attention": "Requiere atención",
    "Today": "Hoy",
    "Settings": "Configuración",
    "Language": "Idioma",
    "Lock screen": "Bloquear pantalla",
    # sync status
    "Online": "En línea",
    "Offline": "Sin conexión",
    "Sync now": "Sincronizar",
    "Syncing…": "Sincronizando…",
    "{n} changes waiting": "{n} cambios pendientes",
    "All changes sent": "Todos los cambios enviados",
    "Last sync {time}": "Última sincronización {time}",
    "Never synced": "Nunca sincronizado",
    # patients
    "Search by name, phone or record number": "Buscar por nombre, teléfono o ficha",
    "New patient": "Nuevo paciente",
    "Edit patient": "Editar paciente",
    "Given name": "Nombre",
    "Family name": "Apellido",
    "Date of birth": "Fecha de nacimiento",
    "Phone": "Teléfono",
    "Address": "Dirección",
    "Save": "Guardar",
    "Cancel": "Cancelar",
    "Record": "Ficha",
    "Name": "Nombre",
    "Appointments": "Citas",
    "Status": "Estado",
    "Take payment…": "Cobrar…",
    "Required.": "Obligatorio.",
    "Not a valid e-mail address.": "No es un correo electrónico válido.",
    "E-mail reminders need an e-mail address.":
        "Los recordatorios por correo necesitan un correo electrónico.",
    "Text reminders need a phone number.": "Los recordatorios por mensaje necesitan un teléfono.",
    "Reminders by": "Recordatorios por",
    "Language of messages": "Idioma de los mensajes",
    "The clinic's ({zone})": "El de la clínica ({zone})",
    "Time zone": "Zona horaria",
    "Not a valid phone number; include the area code.":
        "No es un teléfono válido; incluya el código de área.",
    "Write the date as YYYY-MM-DD.": "Escriba la fecha como AAAA-MM-DD.",
    "The date of birth cannot be in the future.":
        "La fecha de nacimiento no puede ser futura.",
    "The date of birth must be on or after 1900-01-01.":
        "La fecha de nacimiento debe ser desde 1900-01-01.",
    "Too long (at most {n} characters).": "Demasiado largo (máximo {n} caracteres).",
    "No patient matches.": "Ningún paciente coincide.",
    # attention
    "Booking rejected": "Reserva rechazada",
    "Value replaced": "Valor reemplazado",
    "Rebook": "Reagendar",
    "Keep current": "Mantener actual",
    "Restore mine": "Restaurar el mío",
    "Nothing needs attention.": "Nada requiere atención.",
    # payments and receipts
    "Take payment": "Cobrar",
    "Appointment": "Cita",
    "Amount": "Monto",
    "Method": "Medio de pago",
    "Reference": "Referencia",
    "Cash": "Efectivo",
    "Card": "Tarjeta",
    "Transfer": "Transferencia",
    "Card voucher or transfer number": "Voucher de tarjeta o número de transferencia",
    "Save receipt (PDF)…": "Guardar comprobante (PDF)…",
    "Save receipt": "Guardar comprobante",
    "Close": "Cerrar",
    "Payments for this visit": "Pagos de esta cita",
    "Payment taken.": "Pago registrado.",
    "Receipt saved: {path}": "Comprobante guardado: {path}",
    "Only the front desk takes payments.": "Solo recepción registra pagos.",
    "Enter the amount.": "Ingrese el monto.",
    "The amount must be more than zero.": "El monto debe ser mayor que cero.",
    "Write the amount like {example}.": "Escriba el monto así: {example}.",
    "{currency} has no cents; enter a whole amount.":
        "{currency} no tiene centavos; ingrese un monto entero.",
    "At most {n} decimals.": "Máximo {n} decimales.",
    "At most {max} per payment; check the amount.": "Máximo {max} por pago; revise el monto.",
    "This appointment is not on this computer.": "Esta cita no está en este equipo.",
    "This appointment is {status}; payments are taken for booked, checked-in or completed visits.":
        "Esta cita está {status}; se cobran citas agendadas, en curso o completadas.",
    "cancelled": "cancelada",
    "no show": "marcada como inasistencia",
    "rejected": "rechazada",
    "This payment is not on this computer.": "Este pago no está en este equipo.",
    "This payment was already voided.": "Este pago ya fue anulado.",
    "Pending": "Pendiente",
    "pending": "pendiente",
    "receipt": "comprobante",
    "VOID": "ANULADO",
    "Payment receipt": "Comprobante de pago",
    "Receipt number": "N.º de comprobante",
    "Date": "Fecha",
    "Patient": "Paciente",
    "Received by": "Recibido por",
    "Pending (numbered when this computer syncs)":
        "Pendiente (se numera cuando este equipo sincronice)",
    "Proof of payment; not a tax document.": "Comprobante de pago; no es un documento tributario.",
    # calendar
    "Book an appointment": "Agendar una cita",
    "Book": "Agendar",
    "Back": "Volver",
    "Cancel appointment": "Cancelar cita",
    "Cancel appointment…": "Cancelar cita…",
    "Cancelled because": "Motivo de la cancelación",
    "Check in": "Registrar llegada",
    "No-show": "No asistió",
    "Reschedule": "Reprogramar",
    "Reschedule…": "Reprogramar…",
    "Move here": "Mover aquí",
    "Day": "Día",
    "Week": "Semana",
    "Previous": "Anterior",
    "Next": "Siguiente",
    "Free": "Libre",
    "Reason": "Motivo",
    "Reason for the visit (optional)": "Motivo de la consulta (opcional)",
    "Why is it cancelled?": "¿Por qué se cancela?",
    "Show cancelled": "Mostrar canceladas",
    "Times in {zone}": "Horas en {zone}",
    "Choose a patient, or add a new one.": "Elija un paciente o agregue uno nuevo.",
    "Choose one of the free times.": "Elija uno de los horarios libres.",
    "No free times on this day.": "No hay horarios libres este día.",
    "No providers on this computer yet; they arrive with the next sync.":
        "Aún no hay profesionales en este equipo; llegan con la próxima sincronización.",
    "The calendar could not be loaded: {error}": "No se pudo cargar la agenda: {error}",
    "Waiting for the server to confirm this booking.":
        "Esperando que el servidor confirme esta reserva.",
    "The server refused this booking: the time was no longer free. Rebook it from Needs "
    "attention.":
        "El servidor rechazó esta reserva: la hora ya no estaba libre. Reagéndela desde "
        "Requiere atención.",
    "{patient} moved to {when} with {provider}.":
        "Cita de {patient} movida al {when} con {provider}.",
    "Booked": "Reservada",
    "Checked in": "Llegó",
    "In progress": "En atención",
    "Completed": "Completada",
    "Cancelled": "Cancelada",
    "Rejected": "Rechazada",
    "booked": "reservada",
    "checked in": "con llegada registrada",
    "in progress": "en atención",
    "completed": "completada",
    "a no-show": "inasistencia",
    "This appointment is {status}; only a pending or booked appointment can be rescheduled.":
        "Estado de la cita: {status}. Solo se puede reprogramar una cita pendiente o "
        "reservada.",
    "This appointment is {status}; only a pending, booked or checked-in appointment can be "
    "cancelled.":
        "Estado de la cita: {status}. Solo se puede cancelar una cita pendiente, reservada o "
        "con llegada registrada.",
    "This appointment is {status}; only a booked appointment can be checked in.":
        "Estado de la cita: {status}. Solo se puede registrar la llegada de una cita "
        "reservada.",
    "This appointment is {status}; only a booked appointment can be marked as a no-show.":
        "Estado de la cita: {status}. Solo una cita reservada se puede marcar como "
        "inasistencia.",
    "This booking is still waiting for the server to confirm it; the patient can be checked "
    "in once it is booked (after the next sync).":
        "Esta reserva aún espera la confirmación del servidor; se podrá registrar la llegada "
        "cuando esté reservada (tras la próxima sincronización).",
    "This booking is still waiting for the server to confirm it; it can be marked as a "
    "no-show once it is booked (after the next sync).":
        "Esta reserva aún espera la confirmación del servidor; se podrá marcar como "
        "inasistencia cuando esté reservada (tras la próxima sincronización).",
    "Your role ({role}) is not allowed to book appointments.":
        "Su rol ({role}) no permite agendar citas.",
    "Your role ({role}) is not allowed to reschedule appointments.":
        "Su rol ({role}) no permite reprogramar citas.",
    "Your role ({role}) is not allowed to cancel appointments.":
        "Su rol ({role}) no permite cancelar citas.",
    "Your role ({role}) is not allowed to check patients in.":
        "Su rol ({role}) no permite registrar llegadas.",
    "Your role ({role}) is not allowed to mark no-shows.":
        "Su rol ({role}) no permite marcar inasistencias.",
    "Your role ({role}) is not allowed to do this.": "Su rol ({role}) no permite hacer esto.",
    "A patient can be marked as a no-show only once the appointment time has come.":
        "Solo se puede marcar una inasistencia cuando ya llegó la hora de la cita.",
    "This appointment is not on this computer any more; it may have been removed on another "
    "one. Sync and look again.":
        "Esta cita ya no está en este equipo; puede haberse eliminado en otro. Sincronice y "
        "vuelva a buscar.",
    "This provider is not on this computer any more. Sync and look again.":
        "Este profesional ya no está en este equipo. Sincronice y vuelva a buscar.",
    "This patient is not on this computer any more. Search again.":
        "Este paciente ya no está en este equipo. Vuelva a buscar.",
    "The reason is too long (at most {n} characters).":
        "El motivo es demasiado largo (máximo {n} caracteres).",
    "The reason contains a character that cannot be stored.":
        "El motivo contiene un carácter que no se puede guardar.",
    "Say why the appointment is cancelled.": "Indique por qué se cancela la cita.",
    "The start time has no time zone.": "La hora de inicio no tiene zona horaria.",
    "An appointment lasts from {low} to {high} minutes.":
        "Una cita dura entre {low} y {high} minutos.",
    "The appointment is already at {when}.": "La cita ya es el {when}.",
    "{when} is in the past. Choose a future time.": "{when} ya pasó. Elija una hora futura.",
    "{when} is more than {days} days ahead.": "{when} está a más de {days} días.",
    "{when} is not one of {provider}'s appointment times. Pick one of the free slots.":
        "{when} no es un horario de atención de {provider}. Elija uno de los horarios libres.",
    "{when} is taken: {provider} has another appointment or time off then. Pick one of the "
    "free slots.":
        "{when} está ocupado: {provider} tiene otra cita o una ausencia a esa hora. Elija uno "
        "de los horarios libres.",
    # reminders: what the patient was sent, and what failed
    "Reminders": "Recordatorios",
    "Reminders…": "Recordatorios…",
    "What the patient was sent about this appointment":
        "Lo que se le envió al paciente sobre esta cita",
    "Messages to the patient about this appointment. Times in {zone}.":
        "Mensajes al paciente sobre esta cita. Horas en {zone}.",
    "Message": "Mensaje",
    "Due": "Programado",
    "Channel": "Canal",
    "Sent at": "Enviado el",
    "Problem": "Problema",
    "Tries": "Intentos",
    "Refresh": "Actualizar",
    "Loading…": "Cargando…",
    "SMS": "SMS",
    "WhatsApp": "WhatsApp",
    "{n} days": "{n} días",
    "Reminder {lead} before": "Recordatorio {lead} antes",
    "Appointment reminder": "Recordatorio de la cita",
    "Change notice": "Aviso de cambio",
    "Cancellation notice": "Aviso de cancelación",
    "Waiting to be sent": "Por enviar",
    "Trying again ({n} failed tries)": "Reintentando ({n} intentos fallidos)",
    "Sent": "Enviado",
    "Failed after {n} tries": "Falló tras {n} intentos",
    "Not sent: no longer needed": "No enviado: ya no era necesario",
    "Not sent": "No enviado",
    "Delivered": "Entregado",
    "Failed, tried again later": "Falló; se reintentó más tarde",
    "Refused by the provider": "Rechazado por el proveedor",
    "rescheduled": "la cita se reprogramó",
    "appointment cancelled": "la cita se canceló",
    "appointment checked in": "se registró la llegada",
    "appointment in progress": "la cita está en atención",
    "appointment completed": "la cita se completó",
    "appointment no show": "el paciente no asistió",
    "the appointment changed": "la cita cambió",
    "too late to remind": "ya era tarde para recordar",
    "quiet hours last until the appointment": "el horario de silencio dura hasta la cita",
    "the patient chose no reminder channel": "el paciente no eligió un canal de recordatorios",
    "no configured channel reaches the patient": "ningún canal configurado llega al paciente",
    "every channel refused the patient's address":
        "todos los canales rechazaron el contacto del paciente",
    "This booking has not reached the server yet; its reminders are planned when it does.":
        "Esta reserva aún no llega al servidor; sus recordatorios se programan cuando llegue.",
    "The server refused this booking; no messages were planned for it.":
        "El servidor rechazó esta reserva; no se programaron mensajes para ella.",
    "No messages for this appointment: none were due when it was booked, or the clinic "
    "sends no reminders.":
        "No hay mensajes para esta cita: ninguno correspondía cuando se agendó, o la clínica "
        "no envía recordatorios.",
    "Reminder status needs the connection to the server, and this computer cannot reach it "
    "now. Try again when it is back online.":
        "El estado de los recordatorios necesita la conexión con el servidor, y este equipo "
        "no puede conectarse ahora. Vuelva a intentarlo cuando haya conexión.",
    "The server did not accept this session: {error}": "El servidor no aceptó esta sesión: "
                                                       "{error}",
    "Reminder status could not be loaded: {error}":
        "No se pudo cargar el estado de los recordatorios: {error}",
    "Messages that could not be sent": "Mensajes que no se pudieron enviar",
    "The patient did not get these messages. Check the patient's phone or e-mail, then send "
    "again.":
        "El paciente no recibió estos mensajes. Revise el teléfono o el correo del paciente "
        "y vuelva a enviarlos.",
    "Messages that could not be sent are kept on the server; they show here when this "
    "computer can reach it.":
        "Los mensajes que no se pudieron enviar se guardan en el servidor; aparecen aquí "
        "cuando este equipo puede conectarse a él.",
    "appointment {when}": "cita del {when}",
    "failed after {n} tries": "falló tras {n} intentos",
    "Send again": "Enviar de nuevo",
    "Sending…": "Enviando…",
    "The message to {patient} will go out again in a moment.":
        "El mensaje para {patient} se enviará de nuevo en un momento.",
    "Sending again needs the connection to the server, and this computer cannot reach it "
    "now. Try again when it is back online.":
        "Para enviar de nuevo se necesita la conexión con el servidor, y este equipo no puede "
        "conectarse ahora. Vuelva a intentarlo cuando haya conexión.",
    # the server's reasons for not sending a message again (its own sentences)
    "This message is pending; only a failed message can be retried.":
        "Este mensaje ya está por enviarse; solo se puede reenviar un mensaje que falló.",
    "This message is sent; only a failed message can be retried.":
        "Este mensaje ya se envió; solo se puede reenviar un mensaje que falló.",
    "This message is cancelled; only a failed message can be retried.":
        "Este mensaje se canceló; solo se puede reenviar un mensaje que falló.",
    "This message is skipped; only a failed message can be retried.":
        "Este mensaje se omitió; solo se puede reenviar un mensaje que falló.",
    "The appointment has changed since this message failed; there is nothing to resend.":
        "La cita cambió desde que este mensaje falló; no hay nada que reenviar.",
    "The appointment is too close (or past) for a reminder.":
        "La cita está demasiado cerca (o ya pasó) para un recordatorio.",
    # the patient's confirmation
    "Confirmed": "Confirmada",
    "✓ By the patient, {when}": "✓ Por el paciente, {when}",
    "Confirmed by the patient": "Confirmada por el paciente",
    "✓ Confirmed by the patient on {day} at {time}":
        "✓ Confirmada por el paciente el {day} a las {time}",
}

# The clinical screens keep their words in their own modules, merged here.
SPANISH.update(DOCTOR_SPANISH)
SPANISH.update(PRESCRIBING_SPANISH)

_language = "en"


class _Notifier(QObject):
    changed = Signal()


_notifier = _Notifier()
# Screens connect a method of theirs: Qt drops the connection when the screen is gone.
language_changed = _notifier.changed


def system_language() -> str:
    code = (locale.getlocale()[0] or "").lower()
    return "es" if code.startswith("es") else "en"


def language() -> str:
    return _language


def set_language(code: str) -> None:
    global _language  # one language for the whole app
    if code not in LANGUAGES:
        raise ValueError(f"unknown language {code!r}; choose one of {', '.join(LANGUAGES)}")
    _language = code
    language_changed.emit()


def tr(text: str, **values: object) -> str:
    """`text` in the current language, with `{name}` placeholders filled in."""
    translated = SPANISH.get(text, text) if _language == "es" else text
    return translated.format(**values) if values else translated
