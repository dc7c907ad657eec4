"""Style sheets shared by the panels: a Run button that is obviously the Run button."""

RUN_STYLE = ("QPushButton { background: #2e7d32; color: white; font-weight: bold; font-size: 15px; "
             "border-radius: 5px; padding: 8px 18px; } QPushButton:hover { background: #388e3c; } "
             "QPushButton:disabled { background: #a5c8a7; color: #eeeeee; }")
STOP_STYLE = ("QPushButton { background: #c62828; color: white; font-weight: bold; font-size: 15px; "
              "border-radius: 5px; padding: 8px 18px; } QPushButton:hover { background: #d32f2f; } "
              "QPushButton:disabled { background: #e6c3c3; color: #f5f5f5; }")
WARNING_STYLE = ("QLabel#resultWarnings { background: #fff3e0; border: 1px solid #ef6c00; border-radius: 3px; "
                 "padding: 4px; color: #bf360c; }")
