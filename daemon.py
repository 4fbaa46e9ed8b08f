"""x"""
def cli(): print("ok")
