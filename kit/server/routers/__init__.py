"""The server's routes by area: the participants' API, the teacher's API and page, and the pages."""
