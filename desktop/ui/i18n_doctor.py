"""Spanish for the doctor's workspace: the queue, the chart, notes, chart records and
lab orders (merged into `desktop.ui.i18n`)."""

from __future__ import annotations

SPANISH: dict[str, str] = {
    # main window
    "Consultation": "Consulta",
    "Pharmacy": "Farmacia",
    "Laboratory": "Laboratorio",
    # the queue
    "Today's patients": "Pacientes de hoy",
    "Find a patient by name, phone or record number":
        "Buscar un paciente por nombre, teléfono o ficha",
    "No appointments with you today.": "Hoy no tiene citas.",
    "Patient not on this computer yet": "Paciente aún no está en este equipo",
    "waiting {n} min": "esperando {n} min",
    "waiting {h} h {m} min": "esperando {h} h {m} min",
    "In consultation": "En consulta",
    "Seen": "Atendido",
    # the chart
    "Chart": "Ficha clínica",
    "Choose a patient from today's list, or find one.":
        "Elija un paciente de la lista de hoy, o búsquelo.",
    "{n} years": "{n} años",
    "{n} months": "{n} meses",
    "Age not recorded": "Edad no registrada",
    "Female": "Mujer",
    "Male": "Hombre",
    "Other sex": "Otro sexo",
    "Sex not recorded": "Sexo no registrado",
    "Record {mrn}": "Ficha {mrn}",
    "Allergies: {names}": "Alergias: {names}",
    "No known allergies": "Sin alergias conocidas",
    "Allergies not recorded": "Alergias no registradas",
    "New note": "Nueva nota",
    "Add addendum": "Agregar adenda",
    "Prescribe…": "Recetar…",
    "Order tests…": "Solicitar exámenes…",
    "Edit": "Editar",
    "None recorded": "Nada registrado",
    "When": "Fecha",
    "Entry": "Registro",
    "Loading older entries ({n} in all)…": "Cargando registros anteriores ({n} en total)…",
    "Note: {line}": "Nota: {line}",
    "Addendum: {line}": "Adenda: {line}",
    "(empty)": "(vacía)",
    "Draft": "Borrador",
    "Draft (the other version of an edited draft)":
        "Borrador (la otra versión de un borrador editado)",
    "Signed by {author}": "Firmada por {author}",
    "you": "usted",
    "another doctor": "otro médico",
    "Prescription: {what}": "Receta: {what}",
    "Prescribed by {author}": "Recetada por {author}",
    "the pharmacy": "la farmacia",
    "Sent to {pharmacy}": "Enviada a {pharmacy}",
    "Received by {pharmacy}": "Recibida por {pharmacy}",
    "Dispensed by {pharmacy}": "Dispensada por {pharmacy}",
    "Refused ({reason})": "Rechazada ({reason})",
    "Cancelled ({reason})": "Cancelada ({reason})",
    "quantity {n}": "cantidad {n}",
    "{n} refills": "{n} repeticiones",
    "Lab order: {tests}": "Orden de laboratorio: {tests}",
    "Ordered by {author}": "Solicitada por {author}",
    "urgent": "urgente",
    "abnormal results": "resultados alterados",
    "Results in": "Resultados listos",
    # chart records
    "Allergies": "Alergias",
    "Conditions": "Diagnósticos",
    "Medications": "Medicamentos",
    "Vital signs": "Signos vitales",
    "Add allergy": "Agregar alergia",
    "Add condition": "Agregar diagnóstico",
    "Add medication": "Agregar medicamento",
    "Record vital signs": "Registrar signos vitales",
    "Edit allergy": "Editar alergia",
    "Edit condition": "Editar diagnóstico",
    "Edit medication": "Editar medicamento",
    "Edit vital signs": "Editar signos vitales",
    "Remove this allergy from the chart? Do this only for an entry made in error; mark an "
    "allergy that no longer holds as resolved instead.":
        "¿Quitar esta alergia de la ficha? Hágalo solo con un registro hecho por error; si "
        "la alergia ya no está presente, márquela como resuelta.",
    "Remove this condition from the chart? Do this only for an entry made in error; mark a "
    "condition that has passed as resolved instead.":
        "¿Quitar este diagnóstico de la ficha? Hágalo solo con un registro hecho por error; "
        "si el diagnóstico ya pasó, márquelo como resuelto.",
    "Remove this medication from the chart? Do this only for an entry made in error; mark a "
    "medicine the patient no longer takes as stopped instead.":
        "¿Quitar este medicamento de la ficha? Hágalo solo con un registro hecho por error; "
        "si el paciente ya no lo toma, márquelo como suspendido.",
    "Remove this reading from the chart? Do this only for a reading entered in error.":
        "¿Quitar esta medición de la ficha? Hágalo solo con una medición ingresada por error.",
    "Substance": "Sustancia",
    "Formulary match": "En el vademécum",
    "Not in the formulary": "No está en el vademécum",
    "{name} (class)": "{name} (grupo)",
    "Match the substance to the formulary so prescribing warns about it.":
        "Relacione la sustancia con el vademécum para que la receta advierta sobre ella.",
    "Reaction": "Reacción",
    "Severity": "Gravedad",
    "Unknown": "Desconocida",
    "Mild": "Leve",
    "Severe": "Grave",
    "mild": "leve",
    "moderate": "moderada",
    "severe": "grave",
    "Resolved": "Resuelta",
    "resolved": "resuelta",
    "Condition": "Diagnóstico",
    "ICD-10 code": "Código CIE-10",
    "Since": "Desde",
    "since {date}": "desde {date}",
    "Dose and frequency": "Dosis y frecuencia",
    "Taking": "Lo toma",
    "Stopped": "Suspendido",
    "stopped": "suspendido",
    "Started": "Inicio",
    "Measured at": "Medido el",
    "Systolic (mmHg)": "Sistólica (mmHg)",
    "Diastolic (mmHg)": "Diastólica (mmHg)",
    "Heart rate (bpm)": "Frecuencia cardiaca (lpm)",
    "Breaths per minute": "Respiraciones por minuto",
    "Temperature (°C)": "Temperatura (°C)",
    "SpO₂ (%)": "SpO₂ (%)",
    "Weight (kg)": "Peso (kg)",
    "Height (cm)": "Talla (cm)",
    "BP {value} mmHg": "PA {value} mmHg",
    "bpm": "lpm",
    "HR": "FC",
    "RR": "FR",
    "T": "T",
    "SpO₂": "SpO₂",
    "YYYY-MM-DD": "AAAA-MM-DD",
    "YYYY-MM-DD HH:MM": "AAAA-MM-DD HH:MM",
    "Write the time of the reading as YYYY-MM-DD HH:MM.":
        "Escriba la hora de la medición como AAAA-MM-DD HH:MM.",
    # the note editor
    "Note": "Nota",
    "Note of {when}": "Nota del {when}",
    "Addendum to the note of {when}": "Adenda a la nota del {when}",
    "Saving…": "Guardando…",
    "Saved on this computer at {time}": "Guardado en este equipo a las {time}",
    "Not saved: {reason}": "No guardado: {reason}",
    "Sign note": "Firmar nota",
    "Sign": "Firmar",
    "A signed note cannot be changed; later changes are added as addenda.":
        "Una nota firmada no se puede cambiar; los cambios posteriores se agregan como "
        "adendas.",
    "Signed by {author} on {when}. A signed note cannot change; add an addendum.":
        "Firmada por {author} el {when}. Una nota firmada no cambia; agregue una adenda.",
    "Another computer changed this draft; both texts are kept.":
        "Otro equipo cambió este borrador; se conservan ambos textos.",
    "The text beside this one is the other version; copy what is still needed.":
        "El texto del lado es la otra versión; copie lo que aún se necesite.",
    "The other version": "La otra versión",
    "Copy into this note": "Copiar a esta nota",
    # lab orders
    "Order tests": "Solicitar exámenes",
    "Find a test by name or code": "Buscar un examen por nombre o código",
    "Tests to order": "Exámenes a solicitar",
    "Routine": "Rutina",
    "Urgent": "Urgente",
    "What the lab should know (optional)": "Lo que el laboratorio debe saber (opcional)",
    "Order": "Solicitar",
    # the operations' own sentences, shown as they come
    "An empty note cannot be signed.": "Una nota vacía no se puede firmar.",
    "This note is signed and cannot change; add an addendum.":
        "Esta nota está firmada y no puede cambiar; agregue una adenda.",
    "This draft was discarded.": "Este borrador fue descartado.",
    "Only a signed note takes an addendum; this one is still a draft, so edit it instead.":
        "Solo una nota firmada admite adendas; esta aún es un borrador, así que edítela.",
    "The note to add to is not on this computer; sync, then try again.":
        "La nota a la que se agrega no está en este equipo; sincronice y vuelva a intentarlo.",
    "The note to add to was discarded; there is nothing to add to.":
        "La nota fue descartada; no hay a qué agregar.",
    "The text contains a NUL character, which cannot be stored.":
        "El texto contiene un carácter NUL, que no se puede guardar.",
    "This note is not on this computer; sync, then open it again.":
        "Esta nota no está en este equipo; sincronice y vuelva a abrirla.",
    "This patient is not on this computer yet; sync, then open the chart again.":
        "Este paciente aún no está en este equipo; sincronice y vuelva a abrir la ficha.",
    "This patient's record was removed from the clinic; their chart can no longer be opened.":
        "La ficha de este paciente fue eliminada de la clínica; ya no se puede abrir.",
    "The order was not placed: this patient is not on this computer; sync, then try again.":
        "La orden no se hizo: este paciente no está en este equipo; sincronice y vuelva a "
        "intentarlo.",
    "The order was not placed: the visit it names is not one of this patient's appointments.":
        "La orden no se hizo: la cita que indica no es de este paciente.",
    "This order is already cancelled.": "Esta orden ya está cancelada.",
    "The allergy was not saved: this patient is not on this computer; sync, then try again.":
        "La alergia no se guardó: este paciente no está en este equipo; sincronice y vuelva "
        "a intentarlo.",
    "The condition was not saved: this patient is not on this computer; sync, then try "
    "again.":
        "El diagnóstico no se guardó: este paciente no está en este equipo; sincronice y "
        "vuelva a intentarlo.",
    "The medication was not saved: this patient is not on this computer; sync, then try "
    "again.":
        "El medicamento no se guardó: este paciente no está en este equipo; sincronice y "
        "vuelva a intentarlo.",
    "The vital signs reading was not saved: this patient is not on this computer; sync, "
    "then try again.":
        "La medición no se guardó: este paciente no está en este equipo; sincronice y "
        "vuelva a intentarlo.",
    "This allergy is not on this computer; sync, then try again.":
        "Esta alergia no está en este equipo; sincronice y vuelva a intentarlo.",
    "This condition is not on this computer; sync, then try again.":
        "Este diagnóstico no está en este equipo; sincronice y vuelva a intentarlo.",
    "This medication is not on this computer; sync, then try again.":
        "Este medicamento no está en este equipo; sincronice y vuelva a intentarlo.",
    "This vital signs reading is not on this computer; sync, then try again.":
        "Esta medición no está en este equipo; sincronice y vuelva a intentarlo.",
    "This allergy was removed from the chart; record it again if it still holds.":
        "Esta alergia se quitó de la ficha; regístrela de nuevo si sigue presente.",
    "This condition was removed from the chart; record it again if it still holds.":
        "Este diagnóstico se quitó de la ficha; regístrelo de nuevo si sigue presente.",
    "This medication was removed from the chart; record it again if it still holds.":
        "Este medicamento se quitó de la ficha; regístrelo de nuevo si sigue vigente.",
    "This vital signs reading was removed from the chart; record it again if it still "
    "holds.":
        "Esta medición se quitó de la ficha; regístrela de nuevo si corresponde.",
    "Not accepted by the server: {reason} Correct it and sign again.":
        "No aceptada por el servidor: {reason} Corríjala y fírmela de nuevo.",
}
